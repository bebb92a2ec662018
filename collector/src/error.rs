use thiserror::Error;

#[derive(Debug, Error)]
pub enum CollectorError {
    #[error(transparent)]
    Config(#[from] crate::ConfigErrors),
    #[error("{lost} readings could not be written before shutdown: {cause}")]
    Unflushed { lost: usize, cause: store::StoreError },
    #[error("collector task failed: {0}")]
    Task(String),
}
