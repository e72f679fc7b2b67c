//! berth-proxy: one published port carried in userland (see berth_network::proxy).
//! Flags as docker-proxy's: -proto -host-ip -host-port -container-ip -container-port.

use std::io::Write;

use berth_network::proxy::{Proxy, ProxySpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let proxy = match ProxySpec::from_args(&args).and_then(|spec| Proxy::bind(&spec)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-proxy: {e}");
            std::process::exit(1);
        }
    };
    // Readiness for the parent, then stdout is not used again.
    let mut out = std::io::stdout();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    // SAFETY: closing our own stdout; nothing writes to it after this.
    unsafe { libc::close(1) };
    proxy.serve();
}
