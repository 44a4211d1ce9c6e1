"""What development and the tests need and production never installs: embedded PostgreSQL,
Valkey and anvil (embedded), `make run` (launch), the pytest plugin that starts them, the
local chain's test tokens (localchain, contracts/), crash failpoints and the demo data."""
