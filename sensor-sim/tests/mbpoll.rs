//! An independent Modbus implementation (Debian's `mbpoll`, built on libmodbus) reads every
//! point of every simulated device and gets the value the device model holds, decoded with
//! the register map's documented type, word order and scale.
//!
//! `scripts/test` installs mbpoll; without it this test fails under `CI=true` and is skipped
//! with a message elsewhere.

use std::process::Command;
use std::time::Duration;

use model::{DataType, PointConfig, RegisterKind, WordOrder};
use sensor_sim::{SimOptions, Simulation};
use tokio_util::sync::CancellationToken;

fn mbpoll_available() -> bool {
    let found = Command::new("mbpoll").arg("-V").output().is_ok();
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but mbpoll is missing: scripts/test installs it"
        );
        eprintln!("skipping: mbpoll is not installed (scripts/test installs it)");
    }
    found
}

/// Runs mbpoll once and returns the values it printed (`[ref]: value` lines).
fn mbpoll(port: u16, unit: u8, args: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new("mbpoll")
        .args([
            "-m",
            "tcp",
            "-p",
            &port.to_string(),
            "-a",
            &unit.to_string(),
            "-1",
            "-o",
            "2",
        ])
        .args(args)
        .arg("127.0.0.1")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('[')
                .and_then(|l| l.split_once("]:"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .collect())
}

/// Reads one point with mbpoll the way its documentation says, in engineering units.
fn read_point(port: u16, unit: u8, p: &PointConfig) -> f64 {
    // mbpoll numbers references from 1; our maps give 0-based protocol addresses.
    let reference = (p.address + 1).to_string();
    let table = match p.register {
        RegisterKind::Coil => "0",
        RegisterKind::Discrete => "1",
        RegisterKind::Input => "3",
        RegisterKind::Holding => "4",
    };
    // mbpoll's 32-bit default is word-swapped (CDAB); -B selects big-endian (ABCD).
    let order = p.word_order.unwrap_or_default();
    let swap: &[&str] = if order == WordOrder::Abcd {
        &["-B"]
    } else {
        &[]
    };
    let run = |ty: String, count: &str, extra: &[&str]| {
        let mut args = vec!["-t", &ty, "-r", &reference, "-c", count];
        args.extend_from_slice(extra);
        mbpoll(port, unit, &args).unwrap_or_else(|e| panic!("mbpoll {}: {e}", p.name))
    };
    let raw = match p.data_type {
        DataType::Bool | DataType::U16 => {
            run(table.to_owned(), "1", &[])[0].parse::<f64>().unwrap()
        }
        DataType::I16 => {
            f64::from(run(table.to_owned(), "1", &[])[0].parse::<u16>().unwrap() as i16)
        }
        DataType::I32 | DataType::U32 => {
            assert!(
                matches!(order, WordOrder::Abcd | WordOrder::Cdab),
                "mbpoll reads only ABCD and CDAB"
            );
            let v: i64 = run(format!("{table}:int"), "1", swap)[0].parse().unwrap();
            if p.data_type == DataType::U32 {
                (v as i32 as u32) as f64
            } else {
                v as f64
            }
        }
        DataType::F32 => run(format!("{table}:float"), "1", swap)[0].parse().unwrap(),
        DataType::U64 | DataType::I64 | DataType::F64 => {
            // mbpoll has no 64-bit types: read four raw registers and assemble them by hand
            // according to the documented word order.
            let mut words: Vec<u64> = run(format!("{table}:hex"), "4", &[])
                .iter()
                .map(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).unwrap())
                .collect();
            assert_eq!(
                order,
                WordOrder::Cdab,
                "the sim's 64-bit values are documented low word first"
            );
            words.reverse();
            let bits = words.iter().fold(0u64, |acc, w| (acc << 16) | w);
            match p.data_type {
                DataType::U64 => bits as f64,
                DataType::I64 => bits as i64 as f64,
                _ => f64::from_bits(bits),
            }
        }
    };
    raw * p.scale + p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbpoll_reads_every_point_as_documented() {
    if !mbpoll_available() {
        return;
    }
    // Values are refreshed once an hour of simulated time, so they stay put while mbpoll reads.
    let options = SimOptions {
        update_interval: Duration::from_secs(3600),
        ..SimOptions::default()
    };
    let sim = Simulation::demo(options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let expected: Vec<(u8, Vec<PointConfig>, Vec<f64>)> = sim
        .devices()
        .iter()
        .map(|d| {
            (
                d.unit_id,
                d.model().points().to_vec(),
                d.model().values().to_vec(),
            )
        })
        .collect();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(sim.run(listener, cancel.clone()));

    let checked = tokio::task::spawn_blocking(move || {
        let mut checked = 0;
        for (unit, points, values) in &expected {
            for (p, &want) in points.iter().zip(values) {
                let got = read_point(addr.port(), *unit, p);
                // What the device holds is the value after the register's resolution: an
                // integer register keeps whole steps of `scale`, an f32 about 7 digits.
                let tolerance = match p.data_type {
                    DataType::F32 => want.abs() * 1e-5 + 1e-6,
                    DataType::F64 => 1e-9,
                    _ => p.scale.abs() * 0.5 + 1e-9,
                };
                assert!(
                    (got - want).abs() <= tolerance,
                    "unit {unit} {}: mbpoll read {got}, the model holds {want}",
                    p.name
                );
                checked += 1;
            }
        }
        checked
    })
    .await
    .unwrap();
    assert!(checked >= 19, "checked {checked} points");

    // A unit id the gateway does not know: "gateway target device failed to respond" (0x0B).
    let err = mbpoll(addr.port(), 9, &["-t", "3", "-r", "1", "-c", "1"]).unwrap_err();
    assert!(err.contains("Target device failed to respond"), "{err}");
    // An address the device does not have: exception 02.
    let err = mbpoll(addr.port(), 1, &["-t", "3", "-r", "1000", "-c", "1"]).unwrap_err();
    assert!(err.contains("Illegal data address"), "{err}");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
