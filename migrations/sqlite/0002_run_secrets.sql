-- weft schema, version 2: the secret values of runs, sealed.
-- One row per run that carries secrets (params declared "secret": true,
-- input.secrets). box is base64 of nonce || crypto_secretbox_easy of the
-- run's clear {"input", "params"} under the key derived from the cluster
-- cookie (or --secret-key-file). events and runs only ever hold "***".
CREATE TABLE run_secrets (
  run_id     TEXT PRIMARY KEY,
  box        TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
