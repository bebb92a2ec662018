//! A small harness for end-to-end tests: runs the real `mizumori` binary and talks to it over
//! HTTP on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mizumori"))
}

/// A running `mizumori demo` whose dashboard URL was read from its output.
pub struct Demo {
    pub child: Child,
    pub url: String,
}

impl Demo {
    /// Starts the demo on free ports with its store in `data_dir`, and waits for its URL.
    pub fn start(data_dir: &Path) -> Demo {
        let mut child = bin()
            .args(["demo", "--http", "127.0.0.1:0", "--modbus", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mizumori demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("dashboard:") {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).expect("demo printed its dashboard URL");
        Demo { child, url }
    }

    /// Sends SIGTERM and returns the exit status and how long the exit took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(ok.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for demo") {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("demo did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
