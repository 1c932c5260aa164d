// Shared by the build scripts of crates whose binaries load ROS 2 (r2r) or
// libtorch (tch); each includes this file with `include!`.
//
// Two link fixes, both needed at load time rather than at compile time:
// - The ROS 2 Jazzy wheels' librcl pulls `*__rosidl_generator_py.so`, which
//   needs libpython's symbols: link libpython explicitly.
// - libtorch only registers CUDA when libtorch_cuda.so is loaded; the linker
//   drops it as unused unless told not to (tch-rs issues 907/964).

#[allow(dead_code)]
fn python_config(var: &str, env_name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={env_name}");
    if let Ok(value) = std::env::var(env_name) {
        return Some(value);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", &format!("import sysconfig; print(sysconfig.get_config_var('{var}') or '')")])
        .output()
        .ok()?;
    let value = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!value.is_empty()).then_some(value)
}

#[allow(dead_code)]
fn link_libpython() {
    let libdir = python_config("LIBDIR", "RRL_PYTHON_LIBDIR");
    let version = python_config("py_version_short", "RRL_PYTHON_VERSION");
    match (libdir, version) {
        (Some(libdir), Some(version)) => {
            println!("cargo:rustc-link-search=native={libdir}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-lpython{version}");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
        _ => println!("cargo:warning=libpython not found: run scripts/setup.sh and source .venv/rrl.env"),
    }
}

#[allow(dead_code)]
fn link_torch_cuda() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    let candidates: Vec<std::path::PathBuf> = [
        std::env::var("LIBTORCH").ok().map(|p| std::path::PathBuf::from(p).join("lib")),
        std::env::var("VIRTUAL_ENV").ok().and_then(|venv| {
            let lib = std::path::PathBuf::from(venv).join("lib");
            std::fs::read_dir(&lib).ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("site-packages/torch/lib")).find(|p| p.is_dir())
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    for dir in candidates {
        if dir.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
            return;
        }
    }
}
