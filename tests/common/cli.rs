//! Running the `lsm` binary as a user's script would, and reading what it printed.

use std::process::{Command, Output, Stdio};

/// `lsm <args>` with no input, and without the environment variables (server address,
/// token, proxies) that would let the test's surroundings change what it does.
pub fn lsm_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lsm"));
    cmd.args(args).stdin(Stdio::null());
    for var in [
        "LSM_URL",
        "LSM_ADMIN_TOKEN",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `lsm <group> <args> --url <url> --token <token>` (an admin command group such
/// as `index` or `plugin`).
pub fn admin(group: &str, url: &str, token: &str, args: &[&str]) -> Output {
    lsm_command(&[group])
        .args(args)
        .args(["--url", url, "--token", token])
        .output()
        .expect("run lsm")
}

/// What the command printed on its standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the command printed on its standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command's exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}
