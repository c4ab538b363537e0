-- 0009: what an admin chose a column to mean, remembered per tenant.
-- An admin maps a column nothing matched to a field (or ignores a column) with
-- `--map` or `?mapping=`; the next file of the tenant with the same header gets
-- the same choice without being asked (producer.choices). header_key is the
-- header as the mapping compares it (producer.mapping.header_key: case, accents,
-- spaces and punctuation folded away); header is the text as last written, for
-- people to read. A NULL field means "ignore this column". No CHECK lists the
-- fields: a choice of a field the vocabulary no longer has is skipped when read.
CREATE TABLE column_choices (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    header_key text NOT NULL,
    field      text,
    header     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, header_key)
);
