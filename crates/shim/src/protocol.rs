//! The control protocol on `<state-dir>/shim.sock`: one JSON request per
//! line, one JSON response per line (`{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`). `attach` and `exec` with `attach` turn the
//! connection into a stream: after the response line, the client's bytes are
//! the process's stdin (shut down the write side for EOF) and the shim sends
//! output — raw for a tty, else Docker's multiplexed frames
//! `[stream, 0, 0, 0, len as u32 big-endian] ++ data` (1 stdout, 2 stderr).
//! The shim closes the stream once the process's output has ended.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result, ShimError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    State,
    Start,
    /// Signal the init (`all`: every process of the container) or an exec.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    /// Answers when the process has exited and its output is drained.
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default = "yes")]
        stdout: bool,
        #[serde(default = "yes")]
        stderr: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    Resize {
        width: u16,
        height: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    /// `process` is an OCI runtime-spec process object; `terminal` is set
    /// from `tty`. With `attach`, this connection becomes its stream.
    Exec {
        id: String,
        process: Value,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        attach: bool,
    },
    /// `runtime delete` of a stopped (or never started) container.
    Delete,
    /// Exit the shim; refused while the container runs.
    Shutdown,
}

fn yes() -> bool {
    true
}

/// How a process ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal number.
    pub exit_code: i32,
    pub exited_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimState {
    pub id: String,
    pub pid: i32,
    /// `created`, `running` or `stopped`.
    pub status: String,
    pub exit: Option<ExitStatus>,
    pub deleted: bool,
    pub tty: bool,
}

/// The header of one multiplexed frame.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// A client of one shim.
pub struct ShimClient {
    reader: BufReader<UnixStream>,
}

impl ShimClient {
    pub fn connect(socket: &Path) -> Result<ShimClient> {
        let s = crate::sockpath::connect(socket).ctx(|| format!("connect {}", socket.display()))?;
        Ok(ShimClient {
            reader: BufReader::new(s),
        })
    }

    /// Sends a request and returns the response's fields.
    pub fn call(&mut self, req: &Request) -> Result<Value> {
        let mut line = serde_json::to_vec(req)?;
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .ctx(|| "send request".into())?;
        let mut resp = String::new();
        self.reader
            .read_line(&mut resp)
            .ctx(|| "read response".into())?;
        if resp.is_empty() {
            return Err(ShimError::Protocol("shim closed the connection".into()));
        }
        let v: Value = serde_json::from_str(&resp)?;
        if v["ok"] == Value::Bool(true) {
            Ok(v)
        } else {
            Err(ShimError::Refused(
                v["error"].as_str().unwrap_or("unknown error").to_string(),
            ))
        }
    }

    pub fn state(&mut self) -> Result<ShimState> {
        Ok(serde_json::from_value(self.call(&Request::State)?)?)
    }

    pub fn start(&mut self) -> Result<()> {
        self.call(&Request::Start).map(drop)
    }

    pub fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        self.call(&Request::Kill {
            signal,
            all,
            exec_id: None,
        })
        .map(drop)
    }

    pub fn wait(&mut self, exec_id: Option<&str>) -> Result<ExitStatus> {
        let v = self.call(&Request::Wait {
            exec_id: exec_id.map(String::from),
        })?;
        Ok(serde_json::from_value(v)?)
    }

    pub fn resize(&mut self, width: u16, height: u16, exec_id: Option<&str>) -> Result<()> {
        self.call(&Request::Resize {
            width,
            height,
            exec_id: exec_id.map(String::from),
        })
        .map(drop)
    }

    /// Starts an exec'd process; returns its pid.
    pub fn exec(&mut self, id: &str, process: Value, tty: bool, stdin: bool) -> Result<i32> {
        let v = self.call(&Request::Exec {
            id: id.into(),
            process,
            tty,
            stdin,
            attach: false,
        })?;
        Ok(v["pid"].as_i64().unwrap_or(0) as i32)
    }

    pub fn delete(&mut self) -> Result<()> {
        self.call(&Request::Delete).map(drop)
    }

    /// Bounds every later call: a shim that stops answering gives an error
    /// after `t` instead of blocking its caller for ever.
    pub fn set_timeout(&self, t: Option<std::time::Duration>) -> Result<()> {
        let s = self.reader.get_ref();
        s.set_read_timeout(t)
            .and_then(|()| s.set_write_timeout(t))
            .ctx(|| "set timeout".into())
    }

    pub fn shutdown(&mut self) -> Result<()> {
        self.call(&Request::Shutdown).map(drop)
    }

    /// Sends `attach` (or an attaching `exec`) and hands over the stream.
    pub fn into_stream(mut self, req: &Request) -> Result<AttachStream> {
        let v = self.call(req)?;
        Ok(AttachStream {
            tty: v["tty"].as_bool().unwrap_or(false),
            reader: self.reader,
        })
    }
}

/// An attached stream; see the module comment for its format.
pub struct AttachStream {
    pub tty: bool,
    reader: BufReader<UnixStream>,
}

impl AttachStream {
    /// Writes to the process's stdin.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        self.reader
            .get_mut()
            .write_all(data)
            .ctx(|| "write stdin".into())
    }

    /// Ends the process's stdin (when the shim closes it on client EOF).
    pub fn close_stdin(&mut self) -> Result<()> {
        self.reader
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .ctx(|| "shutdown".into())
    }

    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> Result<()> {
        self.reader
            .get_ref()
            .set_read_timeout(t)
            .ctx(|| "set timeout".into())
    }

    /// Reads raw bytes (tty mode); 0 at the end.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.reader.read(buf).ctx(|| "read stream".into())
    }

    /// Reads one frame (non-tty): (stream, data), None at the end.
    pub fn read_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let mut h = [0u8; 8];
        match self.reader.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e).ctx(|| "read frame".into()),
        }
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut data = vec![0; len];
        self.reader
            .read_exact(&mut data)
            .ctx(|| "read frame".into())?;
        Ok(Some((h[0], data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r: Request = serde_json::from_str(r#"{"type":"attach","stdin":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: true,
                exec_id: None
            }
        );
        let k = serde_json::to_string(&Request::Kill {
            signal: 9,
            all: true,
            exec_id: None,
        })
        .unwrap();
        assert_eq!(k, r#"{"type":"kill","signal":9,"all":true}"#);
        assert_eq!(frame_header(2, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
