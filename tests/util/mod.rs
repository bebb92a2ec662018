//! A small harness for end-to-end tests: runs the real `mizumori` binary and talks to it over
//! HTTP on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password the tests give `mizumori demo` for its users.
pub const DEMO_PASSWORD: &str = "test-demo-password";

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
            .args([
                "demo",
                "--http",
                "127.0.0.1:0",
                "--modbus",
                "127.0.0.1:0",
                "--demo-password",
                DEMO_PASSWORD,
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mizumori demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((key, value)) = line.trim().split_once(':') {
                    let _ = tx.send((key.trim().to_owned(), value.trim().to_owned()));
                }
            }
        });
        let mut url = None;
        let mut password = None;
        let started = Instant::now();
        while url.is_none() || password.is_none() {
            let left = Duration::from_secs(30).saturating_sub(started.elapsed());
            let (key, value) = rx.recv_timeout(left).expect("demo printed its dashboard URL and password");
            match key.as_str() {
                "dashboard" => url = Some(value.trim_end_matches('/').to_owned()),
                "password" => password = Some(value),
                _ => {}
            }
        }
        let url = url.unwrap();
        // The demo prints the password its users have; the tests chose it.
        assert_eq!(password.as_deref(), Some(DEMO_PASSWORD));
        Demo { child, url }
    }

    /// An HTTP client logged in as the demo user `user` (viewer, crew, engineer, planner or
    /// admin): it sends the session cookie that `POST /login` set.
    pub async fn login(&self, user: &str) -> reqwest::Client {
        let anonymous = store::tls::plain_http_client().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let resp = anonymous
            .post(format!("{}/login", self.url))
            .form(&[("username", user), ("password", DEMO_PASSWORD)])
            .send()
            .await
            .expect("POST /login");
        assert_eq!(resp.status(), 303, "login as {user}");
        let cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("mizumori_session="))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
        store::tls::plain_http_client().default_headers(headers).build().unwrap()
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

/// A throwaway InfluxDB server (Debian's `influxd`) on 127.0.0.1 with its data in a temporary
/// directory, for tests that stop and start the store. Killed on drop.
pub struct Influxd {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Influxd {
    /// Starts one, or returns `None` when influxd is not installed (which fails under CI=true).
    pub fn start() -> Option<Influxd> {
        if Command::new("influxd").arg("version").output().is_err() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but influxd is missing: scripts/test installs it"
            );
            eprintln!("skipping: influxd is not installed (scripts/test installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let rpc = free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("influxdb.conf"),
            format!(
                "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n"
            ),
        )
        .unwrap();
        let mut influxd = Influxd { child: None, dir, port };
        influxd.resume();
        Some(influxd)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and data, and waits for /ping.
    pub fn resume(&mut self) {
        let child = Command::new("influxd")
            .args(["run", "-config"])
            .arg(self.dir.path().join("influxdb.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start influxd");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "influxd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, as an operator would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// SIGTERM, then wait (up to 10 s) for a clean exit.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}");
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
