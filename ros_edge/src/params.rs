//! Read-only node parameters (`ros2 param list` / `get` show what a node
//! drives; the launch file stays the one place it is configured).

/// Parameter changes from outside: (name, new value).
pub type ParameterEvents = std::pin::Pin<Box<dyn futures::Stream<Item = (String, r2r::ParameterValue)>>>;

/// Declares `parameters` on `node` and starts its parameter services on a
/// local executor, which the node's loop runs after each `spin_once`.
pub fn parameter_service(node: &mut r2r::Node, parameters: &[(&str, r2r::ParameterValue)]) -> Result<(futures::executor::LocalPool, ParameterEvents), crate::EdgeError> {
    for (name, value) in parameters {
        node.params.lock().expect("parameters").insert((*name).into(), r2r::Parameter::new(value.clone()));
    }
    let (service, events) = node.make_parameter_handler()?;
    let services = futures::executor::LocalPool::new();
    futures::task::LocalSpawnExt::spawn_local(&services.spawner(), service).map_err(|e| crate::EdgeError::Refused(format!("the parameter service did not start: {e}")))?;
    Ok((services, Box::pin(events)))
}
