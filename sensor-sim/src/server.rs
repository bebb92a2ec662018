//! The Modbus TCP side: a gateway that routes requests by unit id to register images.

use std::collections::HashMap;
use std::future;
use std::io;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::RegisterImage;

/// The images behind one listening address, by unit id.
#[derive(Debug, Clone)]
pub(crate) struct Units(Arc<HashMap<u8, Arc<RwLock<RegisterImage>>>>);

impl Units {
    pub(crate) fn new(units: impl IntoIterator<Item = (u8, Arc<RwLock<RegisterImage>>)>) -> Self {
        Units(Arc::new(units.into_iter().collect()))
    }
}

#[derive(Debug)]
struct Gateway {
    units: Units,
}

impl tokio_modbus::server::Service for Gateway {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        future::ready(answer(&self.units, req))
    }
}

fn answer(units: &Units, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
    // A gateway whose target unit does not answer replies 0x0B, "gateway target device
    // failed to respond"; that is what a collector sees for a wrong unit id in the field.
    let image = units
        .0
        .get(&req.slave)
        .ok_or(ExceptionCode::GatewayTargetDevice)?;
    let image = image.read().unwrap_or_else(|p| p.into_inner());
    let illegal = ExceptionCode::IllegalDataAddress;
    match req.request {
        Request::ReadCoils(addr, cnt) if cnt <= 2000 => image
            .coils
            .read(addr, cnt)
            .map(Response::ReadCoils)
            .ok_or(illegal),
        Request::ReadDiscreteInputs(addr, cnt) if cnt <= 2000 => image
            .discretes
            .read(addr, cnt)
            .map(Response::ReadDiscreteInputs)
            .ok_or(illegal),
        Request::ReadHoldingRegisters(addr, cnt) if cnt <= 125 => image
            .holding
            .read(addr, cnt)
            .map(Response::ReadHoldingRegisters)
            .ok_or(illegal),
        Request::ReadInputRegisters(addr, cnt) if cnt <= 125 => image
            .input
            .read(addr, cnt)
            .map(Response::ReadInputRegisters)
            .ok_or(illegal),
        Request::ReadCoils(..)
        | Request::ReadDiscreteInputs(..)
        | Request::ReadHoldingRegisters(..)
        | Request::ReadInputRegisters(..) => Err(ExceptionCode::IllegalDataValue),
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    units: Units,
    cancel: CancellationToken,
) -> io::Result<()> {
    let server = Server::new(listener);
    let on_connected = |stream, peer| {
        let units = units.clone();
        async move {
            accept_tcp_connection(stream, peer, |_| {
                Ok(Some(Gateway {
                    units: units.clone(),
                }))
            })
        }
    };
    let on_process_error = |e: io::Error| debug!(error = %e, "Modbus connection ended");
    server
        .serve_until(&on_connected, on_process_error, async move {
            cancel.cancelled_owned().await
        })
        .await?;
    Ok(())
}
