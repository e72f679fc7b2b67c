//! The typed syntax tree. Arguments that Docker expands at build time
//! (paths, ENV values, labels…) are kept *raw* (quotes and `$VAR` intact):
//! expansion depends on the build's variables, see [`super::expand`].

use serde::Serialize;

/// A position in the Dockerfile, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dockerfile {
    /// `# syntax=` (recorded; Berth always uses its own front end).
    pub syntax: Option<String>,
    pub escape: char,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines only, unless
    /// redeclared inside a stage).
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    pub pos: Pos,
    /// Raw image reference (may hold `$VAR`s from meta args), or `scratch`.
    pub base: String,
    pub platform: Option<String>,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Instruction {
    pub pos: Pos,
    /// The logical line as written (continuations joined), for history.
    pub source: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Run(Run),
    Cmd {
        cmd: Command,
    },
    Entrypoint {
        cmd: Command,
    },
    Workdir {
        path: String,
    },
    Copy(Copy),
    Env {
        vars: Vec<KeyValue>,
    },
    Arg {
        args: Vec<ArgDecl>,
    },
    Label {
        labels: Vec<KeyValue>,
    },
    Expose {
        ports: Vec<String>,
    },
    User {
        user: String,
    },
    Volume {
        paths: Vec<String>,
    },
    Shell {
        shell: Vec<String>,
    },
    #[serde(rename = "STOPSIGNAL")]
    StopSignal {
        signal: String,
    },
    Healthcheck(Healthcheck),
    Onbuild {
        inner: Box<Instruction>,
    },
    Maintainer {
        name: String,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Cmd { .. } => "CMD",
            Kind::Entrypoint { .. } => "ENTRYPOINT",
            Kind::Workdir { .. } => "WORKDIR",
            Kind::Copy(c) if c.add => "ADD",
            Kind::Copy(_) => "COPY",
            Kind::Env { .. } => "ENV",
            Kind::Arg { .. } => "ARG",
            Kind::Label { .. } => "LABEL",
            Kind::Expose { .. } => "EXPOSE",
            Kind::User { .. } => "USER",
            Kind::Volume { .. } => "VOLUME",
            Kind::Shell { .. } => "SHELL",
            Kind::StopSignal { .. } => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild { .. } => "ONBUILD",
            Kind::Maintainer { .. } => "MAINTAINER",
        }
    }
}

/// Shell form runs through the build's `SHELL`; exec form is argv as is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "lowercase")]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub cmd: Command,
    pub heredocs: Vec<Heredoc>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--mount=...`, in order.
    pub mounts: Vec<RunMount>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// `RUN --mount=type=…,target=…,…` (values still to be expanded).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunMount {
    pub kind: MountType,
    /// Where in the container; for secrets `/run/secrets/<id>` when unset.
    pub target: Option<String>,
    /// bind: path in the context or in `from`; cache: path in `from`.
    pub source: Option<String>,
    /// bind/cache: a stage or image instead of the context.
    pub from: Option<String>,
    /// cache: which cache (default: the target); secret: which secret.
    pub id: Option<String>,
    pub readonly: bool,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// secret: fail when the build has no such secret.
    pub required: bool,
    /// tmpfs: size in bytes.
    pub size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Copy {
    pub add: bool,
    /// Raw source words (globs, context paths; for heredocs, their names).
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// COPY --parents: keep each source's directories (from the context
    /// root, or from a `/./` pivot in the source) under the destination.
    pub parents: bool,
    /// ADD --checksum=<algo>:<hex> (raw; URL sources only).
    pub checksum: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the content and terminator.
    pub strip_tabs: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyValue {
    pub key: String,
    /// Raw, still to be expanded (quotes intact).
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    /// Raw default, if `NAME=default`.
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Cmd {
        cmd: Command,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}
