use thiserror::Error;

#[derive(Debug, Error)]
pub enum CollectorError {
    #[error(transparent)]
    Config(#[from] crate::ConfigErrors),
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
    #[error("alert store: {0}")]
    Alerts(#[from] store::StoreError),
    #[error("collector task failed: {0}")]
    Task(String),
}
