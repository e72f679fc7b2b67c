// bench/runtime/seccomp-profile.rs — prints berth-runtime's built-in default
// seccomp profile (Docker's default policy, `seccomp_profile::default_profile_json`)
// resolved for the bounding capabilities given as arguments, as an OCI
// `linux.seccomp` object. Built by seccomp-profile.sh against the release rlib
// (no CLI prints the profile yet, and this directory adds nothing to crates/).
fn main() {
    let caps: Vec<String> = std::env::args().skip(1).collect();
    let v = berth_runtime::seccomp_profile::default_profile_json(&caps);
    println!("{}", serde_json::to_string_pretty(&v).expect("profile is JSON"));
}
