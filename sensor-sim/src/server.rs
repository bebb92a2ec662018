//! The Modbus TCP side: a gateway per listening address that routes requests by unit id to
//! register images, and plays communication faults the way field devices do.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::Server;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::device::{CommFault, CommState, RegisterImage};

/// One unit behind a gateway.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub image: Arc<RwLock<RegisterImage>>,
    pub comm: Arc<CommState>,
    pub max_registers: u16,
}

/// The units behind one listening address, and the counter that drops its connections.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub units: Arc<HashMap<u8, Unit>>,
    /// Bumped to reset every open connection (a gateway reboot).
    pub epoch: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Gateway {
    units: Arc<HashMap<u8, Unit>>,
}

type Reply = Result<Option<Response>, ExceptionCode>;

impl tokio_modbus::server::Service for Gateway {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let Some(unit) = self.units.get(&req.slave) else {
            // A gateway whose target does not answer replies 0x0B; that is what a collector
            // sees in the field for a wrong unit id.
            return Box::pin(std::future::ready(Err(ExceptionCode::GatewayTargetDevice)));
        };
        match unit.comm.get() {
            CommFault::None => Box::pin(std::future::ready(answer(unit, req.request).map(Some))),
            CommFault::Silent => Box::pin(std::future::ready(Ok(None))),
            CommFault::Exception(code) => Box::pin(std::future::ready(Err(exception(code)))),
            CommFault::Unreachable => Box::pin(std::future::ready(Err(ExceptionCode::GatewayTargetDevice))),
            CommFault::Late(ms) => {
                // Answer from the image as it is now, but only after the delay: the reply a
                // client that gave up will find in its stream later.
                let reply = answer(unit, req.request).map(Some);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                    reply
                })
            }
        }
    }
}

fn exception(code: u8) -> ExceptionCode {
    match code {
        1 => ExceptionCode::IllegalFunction,
        2 => ExceptionCode::IllegalDataAddress,
        3 => ExceptionCode::IllegalDataValue,
        4 => ExceptionCode::ServerDeviceFailure,
        6 => ExceptionCode::ServerDeviceBusy,
        0x0b => ExceptionCode::GatewayTargetDevice,
        other => ExceptionCode::Custom(other),
    }
}

fn answer(unit: &Unit, request: Request<'_>) -> Result<Response, ExceptionCode> {
    let image = unit.image.read().unwrap_or_else(|p| p.into_inner());
    let illegal = ExceptionCode::IllegalDataAddress;
    let too_many = |cnt: u16, cap: u16| cnt == 0 || cnt > cap;
    match request {
        Request::ReadCoils(_, cnt) | Request::ReadDiscreteInputs(_, cnt) if too_many(cnt, 2000) => {
            Err(ExceptionCode::IllegalDataValue)
        }
        // Devices that document a smaller cap refuse longer reads with "illegal data value".
        Request::ReadHoldingRegisters(_, cnt) | Request::ReadInputRegisters(_, cnt)
            if too_many(cnt, unit.max_registers) =>
        {
            Err(ExceptionCode::IllegalDataValue)
        }
        Request::ReadCoils(addr, cnt) => image.coils.read(addr, cnt).map(Response::ReadCoils).ok_or(illegal),
        Request::ReadDiscreteInputs(addr, cnt) => {
            image.discretes.read(addr, cnt).map(Response::ReadDiscreteInputs).ok_or(illegal)
        }
        Request::ReadHoldingRegisters(addr, cnt) => {
            image.holding.read(addr, cnt).map(Response::ReadHoldingRegisters).ok_or(illegal)
        }
        Request::ReadInputRegisters(addr, cnt) => {
            image.input.read(addr, cnt).map(Response::ReadInputRegisters).ok_or(illegal)
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

/// A connection that fails once its endpoint's epoch moves on, so that a simulated gateway
/// reboot drops every client mid-conversation.
struct ResettableStream {
    inner: TcpStream,
    epoch: Arc<AtomicU64>,
    born: u64,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if self.epoch.load(Ordering::Acquire) != self.born {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "simulated gateway reset"));
        }
        Ok(())
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(crate) async fn serve(listener: TcpListener, endpoint: Endpoint, cancel: CancellationToken) -> io::Result<()> {
    let server = Server::new(listener);
    let on_connected = |stream: TcpStream, _peer| {
        let endpoint = endpoint.clone();
        async move {
            let _ = stream.set_nodelay(true);
            let born = endpoint.epoch.load(Ordering::Acquire);
            let stream = ResettableStream { inner: stream, epoch: endpoint.epoch.clone(), born };
            Ok(Some((Gateway { units: endpoint.units.clone() }, stream)))
        }
    };
    let on_process_error = |e: io::Error| debug!(error = %e, "Modbus connection ended");
    server.serve_until(&on_connected, on_process_error, async move { cancel.cancelled_owned().await }).await?;
    Ok(())
}
