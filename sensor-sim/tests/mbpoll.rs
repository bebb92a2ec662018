//! An independent Modbus implementation (Debian's `mbpoll`, built on libmodbus) reads every
//! point of every device of the demo scenario and gets the value the device model holds,
//! decoded with the register map's documented type, word order and scale.
//!
//! `scripts/test` installs mbpoll; without it this test fails under `CI=true` and is skipped
//! with a message elsewhere.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use model::{DataType, PointConfig, RegisterKind, WordOrder};
use sensor_sim::events::EventKind;
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
        .args(["-m", "tcp", "-p", &port.to_string(), "-a", &unit.to_string(), "-1", "-o", "2"])
        .args(args)
        .arg("127.0.0.1")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[').and_then(|l| l.split_once("]:")).map(|(_, v)| v.trim().to_owned()))
        .collect())
}

/// Reads one point with mbpoll the way its documentation says, in engineering units.
fn read_point(port: u16, unit: u8, p: &PointConfig) -> f64 {
    // mbpoll numbers references from 1, like a manual's "40001"; our maps give 0-based
    // protocol addresses.
    let reference = (p.address + 1).to_string();
    let table = match p.register {
        RegisterKind::Coil => "0",
        RegisterKind::Discrete => "1",
        RegisterKind::Input => "3",
        RegisterKind::Holding => "4",
    };
    let order = p.word_order.unwrap_or_default();
    let run = |ty: String, count: &str, extra: &[&str]| {
        let mut args = vec!["-t", &ty, "-r", &reference, "-c", count];
        args.extend_from_slice(extra);
        mbpoll(port, unit, &args).unwrap_or_else(|e| panic!("mbpoll {}: {e}", p.name))
    };
    let raw_words = |n: &str| -> Vec<u16> {
        run(format!("{table}:hex"), n, &[])
            .iter()
            .map(|h| u16::from_str_radix(h.trim_start_matches("0x"), 16).unwrap())
            .collect()
    };
    let raw = match p.data_type {
        DataType::Bool | DataType::U16 => run(table.to_owned(), "1", &[])[0].parse::<f64>().unwrap(),
        DataType::I16 => f64::from(run(table.to_owned(), "1", &[])[0].parse::<u16>().unwrap() as i16),
        // mbpoll's 32-bit types: default word-swapped (CDAB), -B big-endian (ABCD).
        DataType::I32 | DataType::U32 | DataType::F32 if matches!(order, WordOrder::Abcd | WordOrder::Cdab) => {
            let swap: &[&str] = if order == WordOrder::Abcd { &["-B"] } else { &[] };
            if p.data_type == DataType::F32 {
                run(format!("{table}:float"), "1", swap)[0].parse().unwrap()
            } else {
                let v: i64 = run(format!("{table}:int"), "1", swap)[0].parse().unwrap();
                if p.data_type == DataType::U32 { f64::from(v as i32 as u32) } else { v as f64 }
            }
        }
        // Byte-swapped 32-bit values and all 64-bit ones: mbpoll has no type for them, so read
        // raw registers and assemble the bytes as the register map documents.
        _ => {
            let words = raw_words(&p.data_type.width().to_string());
            let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let (words_reversed, bytes_swapped) = match order {
                WordOrder::Abcd => (false, false),
                WordOrder::Cdab => (true, false),
                WordOrder::Badc => (false, true),
                WordOrder::Dcba => (true, true),
            };
            if bytes_swapped {
                bytes.chunks_mut(2).for_each(|c| c.swap(0, 1));
            }
            if words_reversed {
                let mut chunks: Vec<[u8; 2]> = bytes.chunks(2).map(|c| [c[0], c[1]]).collect();
                chunks.reverse();
                bytes = chunks.concat();
            }
            match p.data_type {
                DataType::U32 => f64::from(u32::from_be_bytes(bytes[..4].try_into().unwrap())),
                DataType::I32 => f64::from(i32::from_be_bytes(bytes[..4].try_into().unwrap())),
                DataType::F32 => f64::from(f32::from_be_bytes(bytes[..4].try_into().unwrap())),
                DataType::U64 => u64::from_be_bytes(bytes[..8].try_into().unwrap()) as f64,
                DataType::I64 => i64::from_be_bytes(bytes[..8].try_into().unwrap()) as f64,
                DataType::F64 => f64::from_be_bytes(bytes[..8].try_into().unwrap()),
                other => unreachable!("{other:?} handled above"),
            }
        }
    };
    raw * p.scale + p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbpoll_reads_every_point_of_the_demo_as_documented() {
    if !mbpoll_available() {
        return;
    }
    // Values are refreshed once an hour of simulated time, so they stay put while mbpoll reads;
    // the start is chosen so that no random event is active.
    let start = "2026-06-01T00:00:00Z".parse().unwrap();
    let options =
        SimOptions { update_interval: Duration::from_secs(3600), start: Some(start), ..SimOptions::default() };
    let sim = Simulation::demo(options).unwrap();
    let corrupting = |k: EventKind| format!("{k:?}").starts_with("Comm") || format!("{k:?}").starts_with("Sensor");
    assert!(
        sim.events().iter().all(|e| !(corrupting(e.kind) && e.is_active(start))),
        "a sensor or communication fault is active at the start"
    );
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses: HashMap<u16, SocketAddr> = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let expected: Vec<(u16, u8, Vec<PointConfig>, Vec<f64>)> = sim
        .devices()
        .iter()
        .map(|d| (addresses[&d.endpoint].port(), d.unit_id, d.model().points().to_vec(), d.model().values().to_vec()))
        .collect();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(sim.run(listeners, cancel.clone()));

    let checked = tokio::task::spawn_blocking(move || {
        let mut checked = 0;
        for (port, unit, points, values) in &expected {
            for (p, &want) in points.iter().zip(values) {
                let got = read_point(*port, *unit, p);
                // The device holds the value at its register's resolution: whole steps of
                // `scale` for integers, about 7 digits for an f32.
                let tolerance = match p.data_type {
                    DataType::F32 => want.abs() * 1e-5 + 1e-6,
                    DataType::F64 => 1e-9,
                    _ => p.scale.abs() * 0.5 + 1e-9,
                };
                assert!(
                    (got - want).abs() <= tolerance,
                    "port {port} unit {unit} {}: mbpoll read {got}, the model holds {want}",
                    p.name
                );
                checked += 1;
            }
        }
        checked
    })
    .await
    .unwrap();
    assert!(checked > 300, "checked {checked} points");

    let gateway = addresses[&0].port();
    // A unit id the gateway does not know: "gateway target device failed to respond" (0x0B).
    let err = mbpoll(gateway, 99, &["-t", "4", "-r", "1", "-c", "1"]).unwrap_err();
    assert!(err.contains("Target device failed to respond"), "{err}");
    // An address the device does not have: exception 02.
    let err = mbpoll(gateway, 1, &["-t", "4", "-r", "1000", "-c", "1"]).unwrap_err();
    assert!(err.contains("Illegal data address"), "{err}");
    // The pump-station controller refuses reads of more than 50 registers: exception 03.
    let err = mbpoll(gateway, 1, &["-t", "4", "-r", "1", "-c", "54"]).unwrap_err();
    assert!(err.contains("Illegal data value"), "{err}");
    mbpoll(gateway, 1, &["-t", "4", "-r", "1", "-c", "50"]).unwrap();

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
}
