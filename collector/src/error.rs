use thiserror::Error;

#[derive(Debug, Error)]
pub enum CollectorError {
    #[error(transparent)]
    Config(#[from] crate::ConfigErrors),
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
    #[error("collector task failed: {0}")]
    Task(String),
}
