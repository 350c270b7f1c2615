"""Re-ranking: pure functions from candidates to candidates, one module per concern, put together by
`pipeline.rerank` as a `RerankProfile` configures it. Nothing here touches the database."""
