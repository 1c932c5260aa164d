include!("../build_support/link.rs");

fn main() {
    link_torch_cuda();
}
