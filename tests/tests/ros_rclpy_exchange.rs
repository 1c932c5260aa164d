//! An r2r node and an rclpy node exchange std_msgs/String both ways over
//! DDS on loopback, in a private ROS domain.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::std_msgs::msg::String as RosString;
use r2r::QosProfile;

#[test]
fn r2r_and_rclpy_exchange_messages_both_ways() {
    tests::isolate_ros_domain();
    let mut peer = tests::python_script("ros_echo_peer.py").arg("40").spawn().expect("start the rclpy peer");

    let ctx = r2r::Context::create().unwrap();
    let mut node = r2r::Node::create(ctx, "rrl_smoke", "").unwrap();
    let publisher = node.create_publisher::<RosString>("/rrl_smoke/to_py", QosProfile::default()).unwrap();
    let mut from_py = node.subscribe::<RosString>("/rrl_smoke/from_py", QosProfile::default()).unwrap();

    // An echo proves both directions: its text went r2r -> rclpy, the echo
    // itself rclpy -> r2r. The announcement is counted for the message only.
    let mut heard_hello = false;
    let mut echoed = None;
    let deadline = Instant::now() + Duration::from_secs(35);
    let mut sent = 0u32;
    while Instant::now() < deadline && echoed.is_none() {
        node.spin_once(Duration::from_millis(20));
        publisher.publish(&RosString { data: format!("ping {sent}") }).unwrap();
        sent += 1;
        while let Some(Some(msg)) = from_py.next().now_or_never() {
            if msg.data == "hello from rclpy" {
                heard_hello = true;
            } else if let Some(rest) = msg.data.strip_prefix("echo:ping ") {
                let n: u32 = rest.parse().expect("echo of one of our pings");
                assert!(n < sent, "echo of a ping never sent: {n}");
                echoed = Some(n);
            }
        }
    }
    let _ = peer.kill();
    let _ = peer.wait();
    assert!(echoed.is_some(), "rclpy never echoed an r2r message (heard rclpy's announcement: {heard_hello})");
}
