pub async fn run(_port: u16, _latency: u64) -> Result<(), String> {
    Err("todo".into())
}
