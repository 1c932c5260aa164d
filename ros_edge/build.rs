include!("../build_support/link.rs");

fn main() {
    link_libpython();
}
