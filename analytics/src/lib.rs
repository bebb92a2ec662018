//! Analytics: asset register import → features → likelihood and consequence of failure →
//! risk → renewal plan → backtest.
//!
//! Empty for now: the foundation only reserves the crate and its place in the dependency
//! graph (`model` ← `store` ← `analytics`). The analytics issue fills it.
