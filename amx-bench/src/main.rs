//! The amx-bench main job (being built).
use amx_core::formats::Format;
fn main() {
    for f in Format::ALL {
        let r = amx_bench::pack_bench::measure(f, 4096, 4096, 5).unwrap();
        println!("{}", r.to_json());
    }
}
