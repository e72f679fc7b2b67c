//! The shim's command line. Hand-parsed: the shim is long-lived and small, and
//! its only caller is the daemon, so clap's weight buys nothing here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, ShimError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub id: String,
    pub bundle: PathBuf,
    /// Holds `shim.sock`, `shim.pid` and `exit.json`.
    pub state_dir: PathBuf,
    /// OCI runtime binary; default: berth-runtime next to the shim, else on PATH.
    pub runtime: Option<PathBuf>,
    /// The runtime's `--root`; the runtime's default when unset.
    pub runtime_root: Option<PathBuf>,
    /// json-file log; no log when unset.
    pub log_path: Option<PathBuf>,
    /// Rotate when the log would pass this size; 0 = never.
    pub log_max_size: u64,
    /// Files kept including the live one (Docker's `max-file`).
    pub log_max_files: u32,
    /// Give the container a stdin pipe (`docker run -i`).
    pub stdin: bool,
    /// Close the container's stdin when the first attached client closes its input.
    pub stdin_once: bool,
    pub tty: bool,
    /// Start the container right after create, without waiting for `start`.
    pub start: bool,
    /// `runtime delete` as soon as the container exits.
    pub auto_remove: bool,
    /// After the exit, wait at most this long for a client to collect it, then
    /// delete and exit anyway. None = wait for a client forever.
    pub linger: Option<Duration>,
}

impl Options {
    pub fn socket_path(&self) -> PathBuf {
        self.state_dir.join("shim.sock")
    }
    pub fn pid_path(&self) -> PathBuf {
        self.state_dir.join("shim.pid")
    }
    pub fn exit_path(&self) -> PathBuf {
        self.state_dir.join("exit.json")
    }

    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options> {
        let mut o = Options {
            log_max_files: 1,
            ..Options::default()
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let arg = arg
                .into_string()
                .map_err(|a| ShimError::Usage(format!("argument not UTF-8: {a:?}")))?;
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| ShimError::Usage(format!("{name} needs a value"))),
                }
            };
            let number = |v: String| -> Result<u64> {
                v.parse()
                    .map_err(|_| ShimError::Usage(format!("{name}: not a number: {v}")))
            };
            match name.as_str() {
                "--id" => o.id = value()?,
                "--bundle" => o.bundle = value()?.into(),
                "--state-dir" => o.state_dir = value()?.into(),
                "--runtime" => o.runtime = Some(value()?.into()),
                "--runtime-root" => o.runtime_root = Some(value()?.into()),
                "--log-path" => o.log_path = Some(value()?.into()),
                "--log-max-size" => o.log_max_size = number(value()?)?,
                "--log-max-files" => o.log_max_files = number(value()?)?.max(1) as u32,
                "--linger" => o.linger = Some(Duration::from_millis(number(value()?)?)),
                "--stdin" => o.stdin = true,
                "--stdin-once" => o.stdin_once = true,
                "--tty" => o.tty = true,
                "--start" => o.start = true,
                "--auto-remove" => o.auto_remove = true,
                other => return Err(ShimError::Usage(format!("unknown argument {other}"))),
            }
        }
        if o.id.is_empty() || o.bundle.as_os_str().is_empty() || o.state_dir.as_os_str().is_empty()
        {
            return Err(ShimError::Usage(
                "--id, --bundle and --state-dir are required".into(),
            ));
        }
        if o.id.contains('/') {
            return Err(ShimError::Usage(format!("bad container id {}", o.id)));
        }
        Ok(o)
    }

    /// The command line that `parse` reads back (what a daemon passes).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut kv = |k: &str, v: OsString| {
            a.push(k.into());
            a.push(v);
        };
        kv("--id", self.id.clone().into());
        kv("--bundle", self.bundle.clone().into());
        kv("--state-dir", self.state_dir.clone().into());
        if let Some(r) = &self.runtime {
            kv("--runtime", r.clone().into());
        }
        if let Some(r) = &self.runtime_root {
            kv("--runtime-root", r.clone().into());
        }
        if let Some(p) = &self.log_path {
            kv("--log-path", p.clone().into());
            kv("--log-max-size", self.log_max_size.to_string().into());
            kv("--log-max-files", self.log_max_files.to_string().into());
        }
        if let Some(l) = self.linger {
            kv("--linger", l.as_millis().to_string().into());
        }
        for (on, flag) in [
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
            (self.tty, "--tty"),
            (self.start, "--start"),
            (self.auto_remove, "--auto-remove"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = Options {
            id: "c1".into(),
            bundle: "/b".into(),
            state_dir: "/s".into(),
            runtime: Some("/usr/sbin/runc".into()),
            log_path: Some("/l/json.log".into()),
            log_max_size: 1000,
            log_max_files: 3,
            tty: true,
            linger: Some(Duration::from_secs(2)),
            ..Options::default()
        };
        assert_eq!(Options::parse(o.to_args()).unwrap(), o);
    }

    #[test]
    fn inline_values_and_errors() {
        let o = Options::parse(
            ["--id=a", "--bundle=/b", "--state-dir", "/s", "--stdin"].map(OsString::from),
        )
        .unwrap();
        assert!(o.stdin && o.id == "a" && o.log_max_files == 1);
        assert!(Options::parse(["--id", "a"].map(OsString::from)).is_err());
        assert!(Options::parse(["--bogus"].map(OsString::from)).is_err());
    }
}
