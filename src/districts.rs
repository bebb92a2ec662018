//! Which of the demo's devices meter which district, for the dashboard's overview: the
//! simulator's scenario says what each device observes (`of`), the dashboard only sees series.

use dashboard::District;
use model::{DeviceId, PointName};
use sensor_sim::Scenario;
use sensor_sim::scenario::Profile;
use store::SeriesKey;

/// The districts of a scenario, in its order, with their inlet flow and critical pressure.
pub fn of_scenario(scenario: &Scenario) -> Vec<District> {
    let series =
        |profile: Profile, point: &str, district: &str| {
            scenario.devices.iter().map(|d| d.get_ref()).find(|d| d.profile == profile && d.of == district).and_then(
                |d| Some(SeriesKey { device: DeviceId::new(&d.name).ok()?, point: PointName::new(point).ok()? }),
            )
        };
    scenario
        .districts
        .iter()
        .map(|d| d.get_ref())
        .map(|d| District {
            name: d.name.clone(),
            inflow: series(Profile::FlowMeter, "flow", &d.name),
            critical_pressure: series(Profile::PressureLogger, "pressure", &d.name),
        })
        .collect()
}
