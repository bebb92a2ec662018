//! Polling: one task per connection (a device, or a gateway with several devices behind it
//! distinguished by unit id), with one request in flight on it.
//!
//! A timeout, a broken connection or a reply that does not match its request drops the
//! connection: tokio-modbus would otherwise hand the late reply to the next request
//! (slowtec/tokio-modbus#324). Reconnects back off exponentially with jitter. A Modbus exception
//! is an answer, not a failure of the connection: it becomes the quality of that request's
//! points. "Busy" (06) is retried after a pause. A device that keeps failing is polled less
//! often until it answers again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use model::{DataType, DeviceConfig, Quality, Reading, RegisterKind, Value, codec};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Source;
use crate::metrics::Metrics;
use crate::plan::{Plan, Request};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Pause before retrying a request answered "busy" (exception 06), and how often.
const BUSY_PAUSE: Duration = Duration::from_millis(100);
const BUSY_RETRIES: u32 = 2;
/// After this many failed cycles in a row a device is polled less often.
const DEGRADE_AFTER: u32 = 3;
/// Longest interval a failing device is slowed to.
const DEGRADED_MAX: Duration = Duration::from_secs(60);

/// One device on a connection.
#[derive(Debug)]
pub(crate) struct Polled {
    pub device: DeviceConfig,
    pub source: Source,
    pub plan: Plan,
}

struct State {
    next_due: Instant,
    failures: u32,
    deadbands: Deadbands,
    sequence: Sequence,
}

/// The last value of a device's sample counter and when it last moved.
#[derive(Debug, Default)]
pub(crate) struct Sequence(Option<(f64, DateTime<Utc>)>);

/// A counter that has not moved for this long means frozen values, unless the device says otherwise.
const DEFAULT_STALE_AFTER_MS: u64 = 10_000;

impl Sequence {
    /// Marks the cycle's good readings `stale` when the device's sample counter has not moved
    /// for `stale_after_ms`: the device answers, but what it answers is old.
    pub(crate) fn check(&mut self, device: &DeviceConfig, readings: &mut [Reading]) {
        let Some(point) = &device.sequence_point else { return };
        let Some(counter) = readings.iter().find(|r| &r.point == point && r.quality == Quality::Good) else { return };
        let (Some(value), time) = (counter.value.as_f64(), counter.time) else { return };
        let moved_at = match self.0 {
            Some((last, at)) if last == value => at,
            _ => time,
        };
        self.0 = Some((value, moved_at));
        let limit = chrono::Duration::milliseconds(device.stale_after_ms.unwrap_or(DEFAULT_STALE_AFTER_MS) as i64);
        if time - moved_at > limit {
            for r in readings.iter_mut().filter(|r| r.quality == Quality::Good) {
                r.quality = Quality::Stale;
            }
        }
    }
}

/// What one request returned.
enum Answer {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
    Exception(u8),
}

/// Why a request failed in a way that costs the connection.
#[derive(Debug)]
enum Broken {
    Timeout(u64),
    Transport(String),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Timeout(ms) => write!(f, "no reply within {ms} ms"),
            Broken::Transport(e) => f.write_str(e),
        }
    }
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

/// The interval of a device that failed `failures` cycles in a row.
fn interval(device: &DeviceConfig, failures: u32) -> Duration {
    let base = Duration::from_millis(device.poll_interval_ms);
    if failures < DEGRADE_AFTER {
        return base;
    }
    base.saturating_mul(1 << (failures - DEGRADE_AFTER + 1).min(6)).min(DEGRADED_MAX.max(base))
}

/// Polls every device of one connection until `cancel` fires or the channel closes.
pub(crate) async fn run(
    address: String,
    devices: Vec<Polled>,
    out: mpsc::Sender<Vec<Reading>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut states: Vec<State> = devices
        .iter()
        .map(|_| State {
            next_due: Instant::now(),
            failures: 0,
            deadbands: Deadbands::default(),
            sequence: Sequence::default(),
        })
        .collect();
    let mut ctx: Option<Context> = None;
    let mut connect_failures: u32 = 0;
    let mut retry_at = Instant::now();
    let timeout = Duration::from_millis(devices.iter().map(|d| d.device.timeout_ms).max().unwrap_or(1000));
    loop {
        let next = states.iter().map(|s| s.next_due).min().expect("a connection has devices");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        for (polled, state) in devices.iter().zip(states.iter_mut()) {
            if state.next_due > now || cancel.is_cancelled() {
                continue;
            }
            let device = &polled.device;
            let cycle_start = Instant::now();
            let readings = if ctx.is_none() && Instant::now() < retry_at {
                // Still backing off: this cycle cannot reach the device.
                None
            } else {
                if ctx.is_none() {
                    match connect(&address, device.unit_id, timeout).await {
                        Ok(c) => {
                            if connect_failures > 0 {
                                info!(address = %address, "connection restored");
                            }
                            connect_failures = 0;
                            ctx = Some(c);
                        }
                        Err(e) => {
                            connect_failures += 1;
                            let wait = backoff(connect_failures);
                            retry_at = Instant::now() + wait;
                            metrics.error("connect");
                            warn!(
                                device = %device.name, config = %polled.source, field = "address", address = %address,
                                error = %e, retry_in_ms = wait.as_millis() as u64, "device unreachable"
                            );
                        }
                    }
                }
                match ctx.as_mut() {
                    Some(c) => {
                        let (readings, broken) = poll_device(c, polled, &metrics).await;
                        if broken.is_none() {
                            connect_failures = 0;
                        }
                        if let Some(e) = broken {
                            // Whatever the cause, the connection may hold a late reply: never reuse it.
                            // The first reconnect is immediate (a reset gateway is usually back at
                            // once, and the other devices behind it are waiting); later ones back off.
                            connect_failures += 1;
                            let wait = if connect_failures <= 1 { Duration::ZERO } else { backoff(connect_failures) };
                            retry_at = Instant::now() + wait;
                            metrics.reconnect();
                            warn!(device = %device.name, address = %address, error = %e, retry_in_ms = wait.as_millis() as u64, "request failed; reconnecting");
                            if let Some(mut c) = ctx.take() {
                                let _ = tokio::time::timeout(timeout, c.disconnect()).await;
                            }
                        }
                        Some(readings)
                    }
                    None => None,
                }
            };
            let readings = readings.unwrap_or_else(|| {
                let t = now_ms();
                (0..device.points.len()).map(|i| absent(device, i, t, Quality::CommFail)).collect()
            });
            let all_failed = readings.iter().all(|r| r.quality == Quality::CommFail);
            state.failures = if all_failed { state.failures + 1 } else { 0 };
            if state.failures == DEGRADE_AFTER {
                warn!(device = %device.name, "device keeps failing; polling it less often until it answers");
            }
            let period = interval(device, state.failures);
            let elapsed = cycle_start.elapsed();
            if elapsed > Duration::from_millis(device.poll_interval_ms) {
                metrics.overrun();
            }
            // The next cycle is due one interval after this one was; if that has passed
            // already, start from now rather than burst to catch up.
            state.next_due = (state.next_due + period).max(Instant::now());
            let mut readings = readings;
            state.sequence.check(device, &mut readings);
            let readings = state.deadbands.filter(device, readings);
            if !readings.is_empty() && out.send(readings).await.is_err() {
                return;
            }
        }
    }
    debug!(address = %address, "poller stopped");
}

async fn connect(address: &str, unit: u8, timeout: Duration) -> Result<Context, String> {
    let addrs: Vec<SocketAddr> = tokio::time::timeout(timeout, tokio::net::lookup_host(address))
        .await
        .map_err(|_| "name lookup timed out".to_owned())?
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let addr = *addrs.first().ok_or("the name resolves to no address")?;
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    // Small requests, one at a time: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    Ok(tcp::attach_slave(stream, Slave(unit)))
}

/// One cycle of one device: every request of its plan, in order. Returns a reading per point
/// and, if the connection broke, why.
async fn poll_device(ctx: &mut Context, polled: &Polled, metrics: &Metrics) -> (Vec<Reading>, Option<Broken>) {
    let device = &polled.device;
    let timeout = Duration::from_millis(device.timeout_ms);
    ctx.set_slave(Slave(device.unit_id));
    let mut readings = Vec::with_capacity(device.points.len());
    let mut broken = None;
    for (k, req) in polled.plan.requests.iter().enumerate() {
        if k > 0 && device.request_pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(device.request_pause_ms)).await;
        }
        if broken.is_some() {
            let t = now_ms();
            readings.extend(req.points.iter().map(|&i| absent(device, i, t, Quality::CommFail)));
            continue;
        }
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let result = read(ctx, req, timeout).await;
            match result {
                Ok(Answer::Exception(6)) if attempt < BUSY_RETRIES => {
                    metrics.request(started.elapsed().as_secs_f64());
                    metrics.error("exception_06");
                    attempt += 1;
                    tokio::time::sleep(BUSY_PAUSE).await;
                }
                Ok(answer) => {
                    metrics.request(started.elapsed().as_secs_f64());
                    if let Answer::Exception(code) = answer {
                        metrics.error(&format!("exception_{code:02x}"));
                    }
                    decode(device, req, &answer, now_ms(), &mut readings);
                    break;
                }
                Err(e) => {
                    metrics.error(match e {
                        Broken::Timeout(_) => "timeout",
                        Broken::Transport(_) => "transport",
                    });
                    let t = now_ms();
                    readings.extend(req.points.iter().map(|&i| absent(device, i, t, Quality::CommFail)));
                    broken = Some(e);
                    break;
                }
            }
        }
    }
    (readings, broken)
}

/// One request with a timeout. `Err` means the connection must be dropped.
async fn read(ctx: &mut Context, req: &Request, timeout: Duration) -> Result<Answer, Broken> {
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
        Err(_) => Err(Broken::Timeout(timeout.as_millis() as u64)),
        Ok(Err(e)) => Err(Broken::Transport(e.to_string())),
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
        let offset = usize::from(p.protocol_address(device) - req.address);
        let order = p.effective_word_order(device);
        let regs = match answer {
            Answer::Exception(code) => {
                out.push(absent(device, i, time, Quality::Exception(*code)));
                continue;
            }
            Answer::Bits(bits) => {
                let reading = match bits.get(offset) {
                    Some(b) => number(device, i, time, f64::from(u8::from(*b))),
                    None => short_reply(device, i, time),
                };
                out.push(reading);
                continue;
            }
            Answer::Registers(regs) => regs.get(offset..).unwrap_or_default(),
        };
        let reading = match (p.data_type, p.bit) {
            (DataType::String, _) => match regs.get(..usize::from(p.width())) {
                Some(words) => Reading {
                    device: device.name.clone(),
                    point: p.name.clone(),
                    time,
                    value: Value::Text(codec::decode_string(words, order)),
                    quality: Quality::Good,
                },
                None => short_reply(device, i, time),
            },
            (_, Some(bit)) => match regs.first() {
                Some(w) => number(device, i, time, f64::from((w >> bit) & 1)),
                None => short_reply(device, i, time),
            },
            _ => match codec::decode(regs, p.data_type, order) {
                Ok(raw) => number(device, i, time, p.engineering(raw)),
                Err(_) => short_reply(device, i, time),
            },
        };
        out.push(reading);
    }
}

/// A decoded number, checked against the point's physical range.
fn number(device: &DeviceConfig, i: usize, time: DateTime<Utc>, v: f64) -> Reading {
    let p = &device.points[i];
    let quality = if v.is_finite() && p.min.is_none_or(|m| v >= m) && p.max.is_none_or(|m| v <= m) {
        Quality::Good
    } else {
        Quality::OutOfRange
    };
    // NaN and infinities cannot be stored; the quality says what happened.
    let value = if v.is_finite() { Value::Number(v) } else { Value::Absent };
    Reading { device: device.name.clone(), point: p.name.clone(), time, value, quality }
}

/// A reply with fewer registers than asked for: the device broke the protocol for this point.
fn short_reply(device: &DeviceConfig, i: usize, time: DateTime<Utc>) -> Reading {
    warn!(device = %device.name, point = %device.points[i].name, "reply shorter than the request");
    absent(device, i, time, Quality::CommFail)
}

/// Per point of a device: the last reading stored, for deadbands.
#[derive(Debug, Default)]
pub(crate) struct Deadbands(Vec<Option<(Value, Quality, DateTime<Utc>)>>);

/// Default heartbeat of a point with a deadband, seconds.
const DEFAULT_HEARTBEAT_S: u64 = 60;

impl Deadbands {
    /// Keeps the readings worth storing: every reading of a point without a deadband; for one
    /// with a deadband, those that moved by at least the deadband, changed quality, or are due
    /// by the heartbeat.
    pub(crate) fn filter(&mut self, device: &DeviceConfig, readings: Vec<Reading>) -> Vec<Reading> {
        if device.points.iter().all(|p| p.deadband.is_none()) {
            return readings;
        }
        self.0.resize(device.points.len(), None);
        readings
            .into_iter()
            .filter(|r| {
                let Some(i) = device.points.iter().position(|p| p.name == r.point) else { return true };
                let p = &device.points[i];
                let Some(band) = p.deadband else { return true };
                let heartbeat = chrono::Duration::seconds(p.heartbeat_s.unwrap_or(DEFAULT_HEARTBEAT_S) as i64);
                let keep = match &self.0[i] {
                    None => true,
                    Some((value, quality, at)) => {
                        *quality != r.quality
                            || r.time - *at >= heartbeat
                            || match (value, &r.value) {
                                (Value::Number(a), Value::Number(b)) => (a - b).abs() >= band,
                                (a, b) => a != b,
                            }
                    }
                };
                if keep {
                    self.0[i] = Some((r.value.clone(), r.quality, r.time));
                }
                keep
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use model::{DataType, DeviceId, PointConfig, PointName};

    use super::*;

    fn device(deadband: Option<f64>) -> DeviceConfig {
        let point = PointConfig {
            deadband,
            heartbeat_s: Some(10),
            ..PointConfig::new(PointName::new("level").unwrap(), RegisterKind::Holding, 0, DataType::U16)
        };
        DeviceConfig::new(DeviceId::new("d").unwrap(), "127.0.0.1:502", 1, vec![point])
    }

    fn at(s: i64, v: f64, q: Quality) -> Reading {
        Reading {
            device: DeviceId::new("d").unwrap(),
            point: PointName::new("level").unwrap(),
            time: DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap(),
            value: Value::Number(v),
            quality: q,
        }
    }

    #[test]
    fn deadband_keeps_moves_quality_changes_and_heartbeats() {
        let d = device(Some(0.5));
        let mut db = Deadbands::default();
        let kept: Vec<i64> = [
            at(0, 1.0, Quality::Good),        // first: kept
            at(1, 1.2, Quality::Good),        // moved 0.2: dropped
            at(2, 1.6, Quality::Good),        // moved 0.6 from the last kept: kept
            at(3, 1.6, Quality::OutOfRange),  // quality changed: kept
            at(4, 1.6, Quality::OutOfRange),  // same: dropped
            at(14, 1.6, Quality::OutOfRange), // heartbeat (10 s) due: kept
        ]
        .into_iter()
        .flat_map(|r| db.filter(&d, vec![r]))
        .map(|r| r.time.timestamp() - 1_700_000_000)
        .collect();
        assert_eq!(kept, vec![0, 2, 3, 14]);
    }

    #[test]
    fn a_counter_that_stops_moving_makes_the_values_stale() {
        let mut d = device(None);
        d.points[0].name = PointName::new("seq").unwrap();
        d.sequence_point = Some(PointName::new("seq").unwrap());
        d.stale_after_ms = Some(3000);
        let mut seq = Sequence::default();
        let mut qualities = Vec::new();
        for (s, v) in [(0, 1.0), (1, 2.0), (2, 2.0), (4, 2.0), (6, 2.0), (7, 3.0)] {
            let mut cycle = vec![Reading { point: PointName::new("seq").unwrap(), ..at(s, v, Quality::Good) }];
            seq.check(&d, &mut cycle);
            qualities.push(cycle[0].quality);
        }
        use Quality::{Good, Stale};
        // The counter stops at 2 from second 1; past 3 s (second 6) the values are stale; it moves at 7.
        assert_eq!(qualities, vec![Good, Good, Good, Good, Stale, Good]);
    }

    #[test]
    fn without_a_deadband_everything_is_kept() {
        let d = device(None);
        let mut db = Deadbands::default();
        let all: Vec<Reading> = (0..5).map(|i| at(i, 1.0, Quality::Good)).collect();
        assert_eq!(db.filter(&d, all.clone()), all);
    }
}
