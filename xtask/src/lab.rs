//! `cargo xtask lab`: JupyterLab on notebooks/ with the "Rust (Lowrank)" kernel.
//!
//! Set-up (also `lab --no-launch`, and the test phase "lab set-up"), each step skipped when done:
//! the clone's `.venv/` with `kernel/requirements-lab.txt` (stamped with its hash), evcxr_jupyter
//! built once into the cache, the kernelspec written into the venv (never the user's Jupyter dirs),
//! and a first kernel run that fills evcxr's shared compile cache. Then the server starts on
//! 127.0.0.1 with a fresh token and prints its URL.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use crate::{cache, notebooks_run, tools};

const REQUIREMENTS: &str = "kernel/requirements-lab.txt";
const EVCXR_VERSION: &str = "0.22.0";
/// The kernelspec's name: notebooks' `metadata.kernelspec.name`, and the kernel nbclient starts.
pub const KERNEL_NAME: &str = "lowrank-rust";
pub const KERNEL_DISPLAY_NAME: &str = "Rust (Lowrank)";
/// How long jupyter_server waits for a kernel's first answer: a kernel compiles the lab crate
/// before it answers (about 20 s warm, minutes on a cold cache).
const KERNEL_INFO_TIMEOUT_S: u32 = 900;

/// What the set-up made: everything a server or a headless run needs.
pub struct Lab {
    pub root: PathBuf,
    pub venv: PathBuf,
    pub python: PathBuf,
}

impl Lab {
    /// The environment every Jupyter process gets: the venv first on PATH, the venv's kernelspecs
    /// ahead of any a user installed under the same name, and runtime files (connection files,
    /// the cookie secret) in the venv rather than the user's Jupyter folders.
    pub fn jupyter_env(&self) -> Vec<(String, String)> {
        let bin = self.venv.join("bin");
        let path = tools::path_with(&[&bin]).unwrap_or_else(|_| bin.clone().into_os_string());
        vec![
            ("PATH".into(), path.to_string_lossy().into_owned()),
            (
                "JUPYTER_PATH".into(),
                self.venv.join("share/jupyter").display().to_string(),
            ),
            (
                "JUPYTER_RUNTIME_DIR".into(),
                self.venv
                    .join("share/jupyter/runtime")
                    .display()
                    .to_string(),
            ),
        ]
    }
}

/// `cargo xtask lab [--no-launch]`.
pub fn run(sh: &Shell, launch: bool) -> Result<()> {
    let lab = ensure(sh)?;
    if launch {
        serve(&lab)
    } else {
        eprintln!("lab: ready; `cargo xtask lab` starts JupyterLab");
        Ok(())
    }
}

/// Makes (or reuses) everything the lab needs; a second call takes a few seconds.
pub fn ensure(sh: &Shell) -> Result<Lab> {
    let root = sh.current_dir();
    check_rust(sh)?;
    let venv = root.join(".venv");
    let python = step("lab venv", || ensure_venv(sh, &venv))?;
    let evcxr = step("evcxr_jupyter", || ensure_evcxr(sh))?;
    let lab = Lab { root, venv, python };
    step("kernelspec", || write_kernelspec(sh, &lab, &evcxr))?;
    step("kernel warm-up", || warm_up(sh, &lab))?;
    Ok(lab)
}

fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let result = f().with_context(|| format!("lab set-up: {name}"));
    if result.is_ok() {
        eprintln!("lab: {name} ready ({:.1}s)", start.elapsed().as_secs_f64());
    }
    result
}

/// The kernel compiles every cell with cargo and rustc found on PATH.
fn check_rust(sh: &Shell) -> Result<()> {
    for tool in ["cargo", "rustc"] {
        cmd!(sh, "{tool} --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .with_context(|| {
                format!(
                    "{tool} is not on PATH: the Rust kernel compiles every cell with it; install Rust from https://rustup.rs"
                )
            })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The venv

/// `.venv/` in the clone with the pinned lab packages. The venv is made in place (its scripts
/// hold absolute paths, so it cannot be renamed); the stamp, written last, marks a finished install.
fn ensure_venv(sh: &Shell, venv: &Path) -> Result<PathBuf> {
    let requirements = sh.read_file(REQUIREMENTS)?;
    let version = cache::version_of(&requirements);
    let python = venv.join("bin/python");
    let stamp = venv.join("lowrank-lab.stamp");
    let works = cmd!(sh, "{python} -c ''")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !works {
        if venv.exists() {
            eprintln!(
                "lab venv: {} does not run (a moved clone or a removed Python?): making it again",
                venv.display()
            );
            sh.remove_path(venv)?;
        }
        let system_python = find_system_python(sh)?;
        eprintln!("lab venv: creating {}", venv.display());
        cmd!(sh, "{system_python} -m venv {venv}")
            .run()
            .context("python3 -m venv failed: on Debian/Ubuntu install python3-venv")?;
    }
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == version) {
        eprintln!(
            "lab venv: reusing {} ({REQUIREMENTS} unchanged)",
            venv.display()
        );
        return Ok(python);
    }
    eprintln!(
        "lab venv: installing {REQUIREMENTS} (JupyterLab, nbclient, nbconvert; about a minute)"
    );
    let _ = std::fs::remove_file(&stamp);
    cmd!(
        sh,
        "{python} -m pip install --disable-pip-version-check --progress-bar off -r {REQUIREMENTS}"
    )
    .run()
    .context("pip could not install the lab packages (is PyPI reachable?)")?;
    write_atomically(&stamp, &version)?;
    Ok(python)
}

/// A Python 3.10+ that can make venvs with pip, or an error saying what to install.
fn find_system_python(sh: &Shell) -> Result<String> {
    let mut found = Vec::new();
    for candidate in ["python3", "python"] {
        let Ok(version) = cmd!(
            sh,
            "{candidate} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'"
        )
        .quiet()
        .ignore_stderr()
        .read() else {
            continue;
        };
        let recent = version
            .split_once('.')
            .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
            .is_some_and(|v: (u32, u32)| v >= (3, 10));
        if !recent {
            found.push(format!("{candidate} is {version}"));
            continue;
        }
        if cmd!(sh, "{candidate} -c 'import venv, ensurepip'")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_err()
        {
            bail!(
                "{candidate} {version} cannot make a venv with pip: install venv and pip for it \
                 (Debian/Ubuntu: apt-get install python3-venv python3-pip)"
            );
        }
        return Ok(candidate.to_string());
    }
    let seen = if found.is_empty() {
        "no python3 on PATH".to_string()
    } else {
        found.join(", ")
    };
    bail!(
        "{seen}: the lab needs Python 3.10 or newer with venv and pip \
         (Debian/Ubuntu: apt-get install python3 python3-venv python3-pip)"
    )
}

// ---------------------------------------------------------------------------------------------
// evcxr_jupyter

/// evcxr_jupyter, built once into `<cache>/tools/evcxr_jupyter-<version>`; returns the binary.
fn ensure_evcxr(sh: &Shell) -> Result<PathBuf> {
    let bin = tools::cargo_install(sh, "evcxr_jupyter", EVCXR_VERSION, 12)?;
    Ok(bin.join("evcxr_jupyter"))
}

// ---------------------------------------------------------------------------------------------
// The kernelspec

/// The venv's kernelspec folder (Jupyter looks in `<prefix>/share/jupyter/kernels`).
pub fn kernel_dir(lab: &Lab) -> PathBuf {
    lab.venv.join("share/jupyter/kernels").join(KERNEL_NAME)
}

/// Writes `kernel.json` and the evcxr config it points at (`init.evcxr` with absolute paths, and
/// `prelude.rs` if kernel/ has one) into the venv; rewritten on every set-up, so edits to kernel/ apply at once.
fn write_kernelspec(sh: &Shell, lab: &Lab, evcxr: &Path) -> Result<()> {
    let dir = kernel_dir(lab);
    let config = dir.join("evcxr");
    sh.create_dir(&config)?;
    let kernel_src = lab.root.join("kernel");
    let init = sh.read_file(kernel_src.join("init.evcxr"))?;
    write_atomically(
        &config.join("init.evcxr"),
        &absolute_paths(&init, &kernel_src)?,
    )?;
    // evcxr also runs an optional prelude.rs; the lessons write `use lab::*;` themselves.
    match sh.read_file(kernel_src.join("prelude.rs")) {
        Ok(prelude) => write_atomically(&config.join("prelude.rs"), &prelude)?,
        Err(_) => {
            let _ = std::fs::remove_file(config.join("prelude.rs"));
        }
    }
    let launcher = lab.root.join("kernel/start-kernel.sh");
    let spec = kernelspec(
        evcxr,
        &launcher,
        &config,
        &compile_cache_dir(sh)?,
        &toolchain(sh),
    );
    write_atomically(
        &dir.join("kernel.json"),
        &(serde_json::to_string_pretty(&spec)? + "\n"),
    )?;
    eprintln!("kernelspec: {}", dir.join("kernel.json").display());
    Ok(())
}

fn kernelspec(
    evcxr: &Path,
    launcher: &Path,
    config: &Path,
    compile_cache: &Path,
    toolchain: &Option<String>,
) -> Value {
    let mut env = json!({
        // evcxr reads init.evcxr and prelude.rs from here when a kernel starts.
        "EVCXR_CONFIG_DIR": config,
        // evcxr's `:cache` lives in $XDG_CACHE_HOME/evcxr: one per toolchain, in Lowrank's cache.
        "XDG_CACHE_HOME": compile_cache,
        // kernel/start-kernel.sh gives each kernel a build folder under here that outlives it.
        "LOWRANK_EVCXR_BUILDS": compile_cache.join("builds"),
        // What lowrank itself resolves from XDG_CACHE_HOME (the sample photographs), kept as is.
        "LOWRANK_CACHE": cache::dir(),
    });
    if let Some(toolchain) = toolchain {
        // The kernel compiles in a temporary folder, outside rust-toolchain.toml's reach.
        env["RUSTUP_TOOLCHAIN"] = json!(toolchain);
    }
    json!({
        "argv": ["/bin/sh", launcher, evcxr, "--control_file", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "env": env,
    })
}

/// Rewrites each relative `path = "..."` of a `:dep` line against `base` (evcxr resolves them
/// against the kernel's working folder, which is wherever the notebook is).
fn absolute_paths(init: &str, base: &Path) -> Result<String> {
    let mut out = String::new();
    for line in init.lines() {
        let rewritten = match line.trim_start().starts_with(":dep") {
            true => rewrite_dep_path(line, base)?,
            false => line.to_string(),
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    Ok(out)
}

fn rewrite_dep_path(line: &str, base: &Path) -> Result<String> {
    let Some(start) = line.find("path") else {
        return Ok(line.to_string());
    };
    let after = &line[start + "path".len()..];
    let Some(open) = after.find('"') else {
        return Ok(line.to_string());
    };
    if !after[..open].trim().eq("=") {
        return Ok(line.to_string());
    }
    let value_start = start + "path".len() + open + 1;
    let Some(len) = line[value_start..].find('"') else {
        bail!("unterminated path in init.evcxr: {line}");
    };
    let path = Path::new(&line[value_start..value_start + len]);
    if path.is_absolute() {
        return Ok(line.to_string());
    }
    let absolute = std::fs::canonicalize(base.join(path))
        .with_context(|| format!("init.evcxr names a missing path: {line}"))?;
    let absolute = absolute.to_string_lossy();
    if absolute.contains('"') || absolute.contains('\\') {
        bail!(
            "the clone's path {absolute} holds a quote or backslash, which init.evcxr cannot carry"
        );
    }
    Ok(format!(
        "{}{absolute}{}",
        &line[..value_start],
        &line[value_start + len..]
    ))
}

/// `<cache>/evcxr-<hash of rustc -vV and evcxr's version>`: evcxr keys its cache by rustc's
/// arguments only, so a toolchain update must start a new cache instead of reusing stale rlibs.
pub fn compile_cache_dir(sh: &Shell) -> Result<PathBuf> {
    let rustc = cmd!(sh, "rustc -vV").quiet().read()?;
    let version = cache::version_of(&format!("{rustc}\nevcxr {EVCXR_VERSION}"));
    Ok(cache::dir().join(format!("evcxr-{version}")))
}

/// The channel rust-toolchain.toml pins, if any.
fn toolchain(sh: &Shell) -> Option<String> {
    let text = sh.read_file("rust-toolchain.toml").ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "channel").then(|| value.trim().trim_matches('"').to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Warm-up

/// Runs a two-cell notebook once per dependency set: it compiles the lab crate's dependencies
/// into the shared cache (minutes, cold) so that JupyterLab's first kernel starts in seconds,
/// and proves the kernel, the lab crate and the display protocol work.
fn warm_up(sh: &Shell, lab: &Lab) -> Result<()> {
    let inputs = [
        sh.read_file("Cargo.lock").unwrap_or_default(),
        sh.read_file("kernel/init.evcxr")?,
        sh.read_file("kernel/prelude.rs").unwrap_or_default(),
    ]
    .join("\n");
    let stamp = compile_cache_dir(sh)?.join(format!("warm-{}", cache::version_of(&inputs)));
    if stamp.exists() {
        eprintln!("kernel warm-up: the compile cache is warm for this Cargo.lock and kernel/");
        return Ok(());
    }
    eprintln!(
        "kernel warm-up: a first kernel compiles the lab crate and its dependencies into the shared \
         cache (once; a few minutes cold, about 30 s after a dependency change)"
    );
    let dir = lab.root.join("target/lab");
    sh.create_dir(&dir)?;
    let notebook = dir.join("warm-up.ipynb");
    write_atomically(
        &notebook,
        &serde_json::to_string_pretty(&warm_up_notebook())?,
    )?;
    let reports = notebooks_run::execute_paths(sh, lab, &[notebook], &dir.join("executed"))?;
    let report = reports
        .first()
        .context("the warm-up notebook did not run")?;
    if let Some(failure) = &report.failure {
        bail!("the kernel failed the warm-up notebook: {failure}");
    }
    let html = report.outputs.iter().any(|output| {
        output["data"]["text/html"].is_array() || output["data"]["text/html"].is_string()
    });
    if !html {
        bail!("the kernel's display protocol gave no text/html output");
    }
    if let Some(parent) = stamp.parent() {
        sh.create_dir(parent)?;
    }
    write_atomically(&stamp, "")?;
    Ok(())
}

fn warm_up_notebook() -> Value {
    let cells = [
        "use lab::*;\nlet a = array![[1.0, 2.0], [3.0, 4.0]];\nassert_eq!(a.dot(&a)[[0, 0]], 7.0);",
        "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>lab</b>\\nEVCXR_END_CONTENT\");",
    ];
    notebook(&cells)
}

/// A clean notebook for the kernel from cell sources (also used by tests).
pub fn notebook(cells: &[&str]) -> Value {
    let cells: Vec<Value> = cells
        .iter()
        .enumerate()
        .map(|(i, source)| {
            json!({
                "cell_type": "code",
                "execution_count": null,
                "id": format!("cell-{i}"),
                "metadata": {},
                "outputs": [],
                "source": source,
            })
        })
        .collect();
    json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "name": KERNEL_NAME,
                "display_name": KERNEL_DISPLAY_NAME,
                "language": "rust",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    })
}

// ---------------------------------------------------------------------------------------------
// The server

/// Starts JupyterLab in the foreground on notebooks/, after printing its URL.
fn serve(lab: &Lab) -> Result<()> {
    let port = if port_is_free(8888) {
        8888
    } else {
        free_port()?
    };
    let token = new_token()?;
    let mut command = server_command(lab, port, &token);
    eprintln!(
        "\nJupyterLab on notebooks/ (pick the \"{KERNEL_DISPLAY_NAME}\" kernel; a kernel takes \
         about 20 s to start: it compiles the lab crate). Ctrl-C twice stops it.\n\n    \
         http://127.0.0.1:{port}/lab?token={token}\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Replaces xtask, so Ctrl-C and the exit status are JupyterLab's own.
        let error = command.exec();
        Err(error).context("cannot start JupyterLab")
    }
    #[cfg(not(unix))]
    {
        let status = command.status().context("cannot start JupyterLab")?;
        if !status.success() {
            bail!("JupyterLab exited with {status}");
        }
        Ok(())
    }
}

fn server_command(lab: &Lab, port: u16, token: &str) -> Command {
    let mut command = Command::new(&lab.python);
    command
        .current_dir(&lab.root)
        .args([
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
        ])
        .arg(format!("--ServerApp.port={port}"))
        .arg("--ServerApp.port_retries=0")
        .arg(format!(
            "--ServerApp.root_dir={}",
            lab.root.join("notebooks").display()
        ))
        .arg(format!(
            "--MappingKernelManager.kernel_info_timeout={KERNEL_INFO_TIMEOUT_S}"
        ))
        // A new notebook gets the Rust kernel, not the python3 one JupyterLab brings along.
        .arg(format!(
            "--MappingKernelManager.default_kernel_name={KERNEL_NAME}"
        ))
        .arg("--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
        // CI runs as root; for anyone else the flag changes nothing.
        .arg("--allow-root")
        .envs(lab.jupyter_env())
        // Through the environment, not argv, so other users cannot read it with ps.
        .env("JUPYTER_TOKEN", token);
    command
}

/// A server started in the background, shut down (politely, then killed) when dropped.
struct Server {
    child: Child,
    port: u16,
    token: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = http(self.port, &self.token, "POST", "/api/shutdown");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_background(lab: &Lab) -> Result<Server> {
    let port = free_port()?;
    let token = new_token()?;
    let dir = lab.root.join("target/lab");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("smoke-server.log");
    let file = std::fs::File::create(&log)?;
    let child = server_command(lab, port, &token)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .context("cannot start JupyterLab")?;
    let mut server = Server {
        child,
        port,
        token,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "JupyterLab exited with {status} before answering; its log:\n{}",
                tail(&server.log)
            );
        }
        if let Ok((200, _)) = http(server.port, &server.token, "GET", "/api/status") {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!(
                "JupyterLab did not answer on port {port} within 120 s; its log:\n{}",
                tail(&server.log)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The test phase "lab smoke": a server on a free loopback port lists the kernel.
pub fn smoke(lab: &Lab) -> Result<()> {
    let server = start_background(lab)?;
    let (status, body) = http(server.port, &server.token, "GET", "/api/kernelspecs")?;
    if status != 200 {
        bail!("GET /api/kernelspecs answered {status}: {body}");
    }
    let specs: Value = serde_json::from_str(&body).context("/api/kernelspecs is not JSON")?;
    let name = &specs["kernelspecs"][KERNEL_NAME]["spec"]["display_name"];
    if name != KERNEL_DISPLAY_NAME {
        let listed: Vec<&String> = specs["kernelspecs"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        bail!("JupyterLab does not list the {KERNEL_DISPLAY_NAME:?} kernel; it lists {listed:?}");
    }
    let (status, _) = http(server.port, &server.token, "GET", "/lab")?;
    if status != 200 {
        bail!("GET /lab answered {status}");
    }
    eprintln!(
        "lab smoke: JupyterLab on 127.0.0.1:{} lists {KERNEL_DISPLAY_NAME:?} and serves /lab",
        server.port
    );
    Ok(())
}

/// One HTTP/1.0 request with the token; returns the status and the body.
fn http(port: u16, token: &str, method: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {token}\r\n\
         Content-Length: 0\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((status, body.to_string()))
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// 24 random bytes as hex, from the OS.
fn new_token() -> Result<String> {
    let mut bytes = [0_u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the server token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Writes through a temp file in the target folder, then renames (ARCHITECTURE.md).
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let temp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_paths_become_absolute_against_the_kernel_folder() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = std::fs::canonicalize(base.join("..")).expect("root");
        let init =
            "// a comment with path = \"x\"\n:opt 1\n:dep lab = { path = \"../crates/lab\" }\n";
        let out = absolute_paths(init, base).expect("rewrite");
        let expected = format!(
            ":dep lab = {{ path = \"{}\" }}",
            root.join("crates/lab").display()
        );
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "// a comment with path = \"x\"",
                ":opt 1",
                expected.as_str()
            ]
        );
    }

    #[test]
    fn absolute_and_registry_deps_stay() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        for line in [":dep ndarray = \"0.17\"", ":dep x = { path = \"/abs/x\" }"] {
            assert_eq!(rewrite_dep_path(line, base).expect("rewrite"), line);
        }
    }

    #[test]
    fn a_missing_dep_path_is_an_error() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let error = rewrite_dep_path(":dep x = { path = \"../no-such-crate\" }", base)
            .expect_err("missing");
        assert!(format!("{error:#}").contains("missing path"), "{error:#}");
    }
}
