//! The `console` section: where `--console` serves the operator's page.

use serde::{Deserialize, Serialize};

use super::Checker;

/// The operator's browser console (`rrl practice --console`, `rrl teleop
/// --console`, `rrl launch --console`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `ip:port` to listen on; port 0 picks a free one (the address is
    /// printed). Any address but 127.0.0.1 or ::1 needs a token of at
    /// least 16 URL-safe characters in `RRL_CONSOLE_TOKEN`, which every
    /// request must carry (the page's address ends `?token=...`).
    /// Default: "127.0.0.1:8765".
    #[serde(default = "default_address")]
    pub address: String,
}

fn default_address() -> String {
    "127.0.0.1:8765".into()
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig { address: default_address() }
    }
}

impl ConsoleConfig {
    pub fn socket_address(&self) -> Result<std::net::SocketAddr, std::net::AddrParseError> {
        self.address.parse()
    }

    pub(super) fn check(&self, c: &mut Checker) {
        if let Err(e) = self.socket_address() {
            c.fail("console.address", format!("{:?} is not an ip:port address ({e})", self.address), Some("\"127.0.0.1:8765\", or \"0.0.0.0:8765\" with a token in RRL_CONSOLE_TOKEN"));
        }
    }
}
