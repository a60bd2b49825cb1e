//! Records the cargo profile and optimisation level, so that Python can warn when the extension
//! was built without optimisation (a debug build is many times slower).
fn main() {
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    let profile = std::env::var("OUT_DIR")
        .ok()
        .and_then(|d| d.split(std::path::MAIN_SEPARATOR).rev().nth(3).map(str::to_string))
        .unwrap_or_default();
    println!("cargo:rustc-env=TPMAP_OPT_LEVEL={opt}");
    println!("cargo:rustc-env=TPMAP_PROFILE={profile}");
}
