//! One device's poll loop: connect, read the plan's requests, decode, hand readings on.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use model::{DeviceConfig, Quality, Reading, RegisterKind, Value, codec};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Source;
use crate::plan::{Plan, Request};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What one request returned.
enum Answer {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
    Exception(u8),
}

/// Now, cut to the millisecond both stores keep.
fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::Duration::milliseconds(1)).unwrap_or(now)
}

/// Exponential backoff with full jitter, so that devices behind one rebooted gateway do not all
/// reconnect in the same instant.
fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_MIN.saturating_mul(1 << failures.min(10)).min(BACKOFF_MAX);
    let ms = rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(ms)
}

pub(crate) async fn run(
    device: DeviceConfig,
    source: Source,
    plan: Plan,
    out: mpsc::Sender<Vec<Reading>>,
    cancel: CancellationToken,
) {
    let interval = Duration::from_millis(device.poll_interval_ms);
    let timeout = Duration::from_millis(device.timeout_ms);
    let mut ticker = tokio::time::interval(interval);
    // A cycle that overruns skips the ticks it missed instead of bursting to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ctx: Option<Context> = None;
    let mut failures: u32 = 0;
    let mut retry_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if ctx.is_none() {
            if tokio::time::Instant::now() < retry_at {
                continue;
            }
            match connect(&device, timeout).await {
                Ok(c) => {
                    if failures > 0 {
                        info!(device = %device.name, address = %device.address, "device reachable again");
                    }
                    ctx = Some(c);
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    retry_at = tokio::time::Instant::now() + wait;
                    warn!(
                        device = %device.name, config = %source, field = "address", address = %device.address,
                        error = %e, retry_in_ms = wait.as_millis() as u64,
                        "device unreachable"
                    );
                    let t = now_ms();
                    let failed = plan
                        .requests
                        .iter()
                        .flat_map(|r| r.points.iter())
                        .map(|&i| absent(&device, i, t, Quality::CommFail));
                    if out.send(failed.collect()).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        }
        let c = ctx.as_mut().expect("connected above");
        let mut readings = Vec::with_capacity(device.points.len());
        let mut broken = None;
        for req in &plan.requests {
            if broken.is_some() {
                let t = now_ms();
                readings.extend(req.points.iter().map(|&i| absent(&device, i, t, Quality::CommFail)));
                continue;
            }
            match read(c, req, timeout).await {
                Ok(answer) => decode(&device, req, &answer, now_ms(), &mut readings),
                Err(e) => {
                    let t = now_ms();
                    readings.extend(req.points.iter().map(|&i| absent(&device, i, t, Quality::CommFail)));
                    broken = Some(e);
                }
            }
        }
        if let Some(e) = broken {
            // Whatever the cause, the connection may hold a late reply: never reuse it.
            failures += 1;
            let wait = backoff(failures);
            retry_at = tokio::time::Instant::now() + wait;
            warn!(device = %device.name, address = %device.address, error = %e, retry_in_ms = wait.as_millis() as u64, "request failed; reconnecting");
            if let Some(mut c) = ctx.take() {
                let _ = tokio::time::timeout(timeout, c.disconnect()).await;
            }
        } else {
            failures = 0;
        }
        if out.send(readings).await.is_err() {
            break;
        }
    }
    debug!(device = %device.name, "poller stopped");
}

async fn connect(device: &DeviceConfig, timeout: Duration) -> Result<Context, String> {
    let addrs: Vec<SocketAddr> = tokio::time::timeout(timeout, tokio::net::lookup_host(&device.address))
        .await
        .map_err(|_| "name lookup timed out".to_owned())?
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let addr = *addrs.first().ok_or("the name resolves to no address")?;
    tokio::time::timeout(timeout, tcp::connect_slave(addr, Slave(device.unit_id)))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))
}

/// One request with a timeout. `Err` means the connection must be dropped.
async fn read(ctx: &mut Context, req: &Request, timeout: Duration) -> Result<Answer, String> {
    let (a, n) = (req.address, req.count);
    let result = tokio::time::timeout(timeout, async {
        Ok::<_, tokio_modbus::Error>(match req.register {
            RegisterKind::Coil => ctx.read_coils(a, n).await?.map(Answer::Bits),
            RegisterKind::Discrete => ctx.read_discrete_inputs(a, n).await?.map(Answer::Bits),
            RegisterKind::Holding => ctx.read_holding_registers(a, n).await?.map(Answer::Registers),
            RegisterKind::Input => ctx.read_input_registers(a, n).await?.map(Answer::Registers),
        })
    })
    .await;
    match result {
        Err(_) => Err(format!("no reply within {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(exception))) => Ok(Answer::Exception(u8::from(exception))),
    }
}

fn absent(device: &DeviceConfig, i: usize, time: DateTime<Utc>, quality: Quality) -> Reading {
    Reading { device: device.name.clone(), point: device.points[i].name.clone(), time, value: Value::Absent, quality }
}

/// Turns one answer into a reading per point of the request.
fn decode(device: &DeviceConfig, req: &Request, answer: &Answer, time: DateTime<Utc>, out: &mut Vec<Reading>) {
    for &i in &req.points {
        let p = &device.points[i];
        let offset = usize::from(p.address - req.address);
        let raw = match answer {
            Answer::Exception(code) => {
                out.push(absent(device, i, time, Quality::Exception(*code)));
                continue;
            }
            Answer::Bits(bits) => bits.get(offset).map(|b| f64::from(u8::from(*b))).ok_or("short reply".to_owned()),
            Answer::Registers(regs) => {
                let words = regs.get(offset..).unwrap_or_default();
                codec::decode(words, p.data_type, p.effective_word_order(device)).map_err(|e| e.to_string())
            }
        };
        let reading = match raw {
            Ok(raw) => {
                let v = p.engineering(raw);
                let in_range = v.is_finite() && p.min.is_none_or(|m| v >= m) && p.max.is_none_or(|m| v <= m);
                if in_range {
                    Reading {
                        device: device.name.clone(),
                        point: p.name.clone(),
                        time,
                        value: Value::Number(v),
                        quality: Quality::Good,
                    }
                } else if v.is_finite() {
                    Reading {
                        device: device.name.clone(),
                        point: p.name.clone(),
                        time,
                        value: Value::Number(v),
                        quality: Quality::OutOfRange,
                    }
                } else {
                    // NaN and infinities cannot be stored; the quality says what happened.
                    absent(device, i, time, Quality::OutOfRange)
                }
            }
            Err(e) => {
                warn!(device = %device.name, point = %p.name, error = %e, "cannot decode reply");
                absent(device, i, time, Quality::CommFail)
            }
        };
        out.push(reading);
    }
}
