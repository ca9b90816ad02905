"""Security and privacy at the edges: who is calling (identity, edge_identity,
dev_key_register), what they may decide (grants), personal data sealed in Temporal
(codec, data_keys, data_converter), searched without being stored (blind_index), and
erased on request (privacy). docs/security.md, docs/sealing.md, docs/privacy.md."""
