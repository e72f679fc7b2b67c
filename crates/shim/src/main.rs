//! `berth-shim`: started by the daemon; detaches, creates the container, and
//! prints `{"pid":..,"socket":..,"container_pid":..}` once it exists.

use anyhow::Context;
use berth_shim::daemon::{self, Role};

fn main() {
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn real_main() -> anyhow::Result<i32> {
    let opts = berth_shim::Options::parse(std::env::args_os().skip(1))?;
    match daemon::detach().context("detach")? {
        Role::Starter(pipe) => {
            let started = daemon::wait_started(pipe)?;
            println!("{}", serde_json::to_string(&started)?);
            Ok(0)
        }
        Role::Shim(reporter) => Ok(berth_shim::run(opts, reporter)),
    }
}
