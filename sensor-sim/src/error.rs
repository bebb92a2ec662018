use std::net::SocketAddr;

use thiserror::Error;

use crate::ScenarioError;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Scenario(Vec<ScenarioError>),
    #[error("time scale must be a positive number, got {0}")]
    BadTimeScale(f64),
    #[error("the update interval must be longer than zero")]
    BadUpdateInterval,
    #[error("{0}")]
    Name(String),
    #[error("endpoint {0} would need a port above 65535")]
    PortRange(u16),
    #[error("give --listen a port (not 0) so the addresses of the devices are known")]
    NeedPort,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("simulator IO: {0}")]
    Io(#[source] std::io::Error),
}
