//! What a gateway's reply says about its limits.

use std::time::Duration;

/// The counts of a one-second window as a gateway reported them
/// (Kong's `X-RateLimit-Limit-Second` / `X-RateLimit-Remaining-Second`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests still allowed in the window the request was counted in.
    pub remaining: u32,
}

/// The rate-limit facts of one reply; all `None` when the gateway sent no
/// rate-limit headers (nginx, or a gateway that hides them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayHint {
    /// The one-second window, when reported.
    pub second: Option<WindowCount>,
    /// A longer window (minute, hour, ...) with nothing left: how long until
    /// it resets by our own clock, counted from when the reply arrived (the
    /// fallback when the gateway does not say).
    pub exhausted_for: Option<Duration>,
    /// The gateway's own word on when its limiting window resets
    /// (`RateLimit-Reset`, whole seconds from the reply).
    pub reset: Option<Duration>,
}

impl GatewayHint {
    /// Whether the reply said anything about limits.
    pub fn is_empty(&self) -> bool {
        self.second.is_none() && self.exhausted_for.is_none() && self.reset.is_none()
    }
}
