//! Communication faults as a Modbus client sees them, through tokio-modbus over TCP.

use std::path::Path;
use std::time::Duration;

use sensor_sim::{Scenario, SimOptions, Simulation};
use tokio_modbus::client::Reader;
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;

const NETWORK: &str = r#"
name = "faults"

[[reservoir]]
name = "r1"
area_m2 = 1000
depth_m = 6
inflow_m3_per_h = 700

[[pump_station]]
name = "ps01"
draws_from = "r1"

[[district]]
name = "d1"
population = 9000
fed_by = "ps01"

[[device]]
name = "fm01"
profile = "flow_meter"
of = "d1"
unit_id = 2

[[device]]
name = "pl01"
profile = "pressure_logger"
of = "d1"
unit_id = 3
"#;

/// A simulation advanced to `minute` with `event` on fm01 from minute 1 to 2, then served
/// without further steps (so the fault stays on).
async fn serve_during(event: &str) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let text = format!("{NETWORK}\n[[event]]\n{event}\ntarget = \"fm01\"\nstart_min = 1\nduration_min = 1\n");
    let scenario = Scenario::parse(Path::new("faults.toml"), &text).unwrap();
    let options = SimOptions { update_interval: Duration::from_secs(1), ..SimOptions::default() };
    let mut sim = Simulation::from_scenario(&scenario, options).unwrap();
    for _ in 0..90 {
        sim.step();
    }
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listeners[0].1.local_addr().unwrap();
    let cancel = CancellationToken::new();
    // The event lasts until simulated minute 2, thirty real seconds away: longer than any test here.
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        sim.run(listeners, token).await.unwrap();
    });
    (addr, cancel, task)
}

async fn client(addr: std::net::SocketAddr, unit: u8) -> tokio_modbus::client::Context {
    tcp::connect_slave(addr, Slave(unit)).await.unwrap()
}

#[tokio::test]
async fn exceptions_are_answered_for_the_faulty_device_only() {
    for (code, expected) in [
        (2, ExceptionCode::IllegalDataAddress),
        (4, ExceptionCode::ServerDeviceFailure),
        (6, ExceptionCode::ServerDeviceBusy),
    ] {
        let (addr, cancel, task) = serve_during(&format!("kind = \"comm_exception\"\nmagnitude = {code}")).await;
        let mut fm = client(addr, 2).await;
        let got = fm.read_holding_registers(0, 2).await.unwrap();
        assert_eq!(got, Err(expected));
        // The logger behind the same gateway answers normally.
        let mut pl = client(addr, 3).await;
        assert!(pl.read_input_registers(0, 7).await.unwrap().is_ok());
        cancel.cancel();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_late_reply_arrives_after_the_clients_timeout() {
    let (addr, cancel, task) = serve_during("kind = \"comm_late_reply\"\nmagnitude = 700").await;
    let mut fm = client(addr, 2).await;
    let timed_out = tokio::time::timeout(Duration::from_millis(300), fm.read_holding_registers(0, 2)).await;
    assert!(timed_out.is_err(), "the reply came before 300 ms");
    // Waiting long enough gets the reply: the device answers, only late.
    let mut patient = client(addr, 2).await;
    let started = std::time::Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(3), patient.read_holding_registers(0, 2)).await.unwrap();
    assert!(reply.unwrap().is_ok());
    assert!(started.elapsed() >= Duration::from_millis(650), "{:?}", started.elapsed());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_silent_device_never_answers() {
    let (addr, cancel, task) = serve_during("kind = \"comm_timeout\"").await;
    let mut fm = client(addr, 2).await;
    assert!(tokio::time::timeout(Duration::from_millis(500), fm.read_holding_registers(0, 2)).await.is_err());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_unreachable_device_gets_the_gateway_exception() {
    let (addr, cancel, task) = serve_during("kind = \"comm_unreachable\"").await;
    let mut fm = client(addr, 2).await;
    assert_eq!(fm.read_holding_registers(0, 2).await.unwrap(), Err(ExceptionCode::GatewayTargetDevice));
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_reset_drops_connections_opened_before_it() {
    // Connect before the reset (minute 0), then let the simulation run into it.
    let text = format!(
        "{NETWORK}\n[[event]]\nkind = \"comm_reset\"\ntarget = \"fm01\"\nstart_min = 0.05\nduration_min = 0.01\n"
    );
    let scenario = Scenario::parse(Path::new("faults.toml"), &text).unwrap();
    let options = SimOptions { time_scale: 10.0, ..SimOptions::default() };
    let sim = Simulation::from_scenario(&scenario, options).unwrap();
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listeners[0].1.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(sim.run(listeners, cancel.clone()));
    let mut old = client(addr, 3).await;
    assert!(old.read_input_registers(0, 2).await.unwrap().is_ok());
    // 3 simulated seconds at ×10 is 0.3 s real; wait well past it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = tokio::time::timeout(Duration::from_secs(2), old.read_input_registers(0, 2)).await.unwrap();
    assert!(after.is_err(), "the old connection still works: {after:?}");
    let mut fresh = client(addr, 3).await;
    assert!(fresh.read_input_registers(0, 2).await.unwrap().is_ok());
    cancel.cancel();
    task.await.unwrap().unwrap();
}
