use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("unit id {unit_id} is used twice (again by device {device})")]
    DuplicateUnit { unit_id: u8, device: String },
    #[error("time scale must be a positive number, got {0}")]
    BadTimeScale(f64),
    #[error("simulator IO: {0}")]
    Io(#[source] std::io::Error),
}
