"""Tables, finance constraints and seed data; ``ensure_schema`` creates them idempotently.

The finance rules live in PostgreSQL as well as in ``ledger.py``: the code gives Odoo-style
errors, the database guarantees the rules hold whatever replica (or bug) writes.
"""

from __future__ import annotations

import psycopg

from ledgerdrill.platforms.sandbox.erp.passwords import hash_password, verify_password
from ledgerdrill.platforms.sandbox.erp.spec import MODELS

# One key for every replica: concurrent ensure_schema calls run one after the other.
SCHEMA_LOCK_KEY = 0x1ED6E4D1

DDL = """
CREATE TABLE IF NOT EXISTS res_company (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    currency text NOT NULL DEFAULT 'EUR'
);
CREATE TABLE IF NOT EXISTS res_partner (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text,
    ref text,
    is_company boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true,
    create_date timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS res_users (
    id serial PRIMARY KEY,
    login text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    partner_id integer NOT NULL REFERENCES res_partner(id),
    company_id integer NOT NULL REFERENCES res_company(id),
    active boolean NOT NULL DEFAULT true
);
-- API keys as Odoo keeps them (``res.users.apikeys``): the first 8 characters in clear as
-- an index, the key itself only hashed; a key has a scope and an expiry
CREATE TABLE IF NOT EXISTS res_users_apikeys (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES res_users(id),
    name text NOT NULL,
    scope text,
    index varchar(8) NOT NULL,
    key text NOT NULL,
    create_date timestamptz NOT NULL DEFAULT now(),
    expiration_date timestamptz
);
CREATE INDEX IF NOT EXISTS res_users_apikeys_index ON res_users_apikeys (index);
CREATE TABLE IF NOT EXISTS ir_model (
    id serial PRIMARY KEY,
    model text NOT NULL UNIQUE,
    name text NOT NULL,
    transient boolean NOT NULL DEFAULT false,
    abstract boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS account_account (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    account_type text NOT NULL,
    reconcile boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS account_journal (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    type text NOT NULL CHECK (type IN ('sale', 'purchase', 'bank', 'cash', 'general')),
    default_account_id integer REFERENCES account_account(id)
);
CREATE TABLE IF NOT EXISTS account_move (
    id serial PRIMARY KEY,
    name text NOT NULL DEFAULT '/',
    ref text,
    state text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'posted', 'cancel')),
    move_type text NOT NULL DEFAULT 'entry',
    journal_id integer NOT NULL REFERENCES account_journal(id),
    partner_id integer REFERENCES res_partner(id),
    date date NOT NULL DEFAULT current_date,
    amount_total numeric(16, 2) NOT NULL DEFAULT 0,
    create_uid integer REFERENCES res_users(id),
    create_date timestamptz NOT NULL DEFAULT now(),
    posted_at timestamptz,
    -- a posted entry always carries its sequence number
    CONSTRAINT account_move_posted_named CHECK (state <> 'posted' OR name <> '/')
);
-- idempotent posting: a client reference identifies one entry
CREATE UNIQUE INDEX IF NOT EXISTS account_move_ref_uniq ON account_move (ref)
    WHERE ref IS NOT NULL;
-- a sequence number is never given twice (names survive a reset to draft or cancel)
CREATE UNIQUE INDEX IF NOT EXISTS account_move_name_uniq ON account_move (journal_id, name)
    WHERE name <> '/';
CREATE TABLE IF NOT EXISTS account_move_line (
    id serial PRIMARY KEY,
    move_id integer NOT NULL REFERENCES account_move(id) ON DELETE CASCADE,
    account_id integer NOT NULL REFERENCES account_account(id),
    journal_id integer NOT NULL REFERENCES account_journal(id),
    partner_id integer REFERENCES res_partner(id),
    name text,
    date date NOT NULL,
    parent_state text NOT NULL DEFAULT 'draft',
    move_name text,
    debit numeric(16, 2) NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit numeric(16, 2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
    balance numeric(16, 2) GENERATED ALWAYS AS (debit - credit) STORED,
    CONSTRAINT account_move_line_one_side CHECK (debit = 0 OR credit = 0)
);
-- Odoo's account.move.line.move_name: the entry's number, a stored related field
-- (related='move_id.name', store=True, in addons/account/models/account_move_line.py);
-- added to a database made before it existed
ALTER TABLE account_move_line ADD COLUMN IF NOT EXISTS move_name text;
UPDATE account_move_line AS line SET move_name = move.name
  FROM account_move AS move
 WHERE line.move_id = move.id AND line.move_name IS NULL AND move.state = 'posted';
CREATE INDEX IF NOT EXISTS account_move_line_move ON account_move_line (move_id);
CREATE INDEX IF NOT EXISTS account_move_line_account ON account_move_line (account_id);
-- one row per journal and year; posting locks it, so numbers are gapless across replicas
CREATE TABLE IF NOT EXISTS account_sequence (
    journal_id integer NOT NULL REFERENCES account_journal(id),
    year integer NOT NULL,
    next_number integer NOT NULL DEFAULT 1 CHECK (next_number >= 1),
    PRIMARY KEY (journal_id, year)
);

-- A posted entry must balance: checked at COMMIT (deferred) so the lines and the
-- state change can be written in any order inside the transaction.
CREATE OR REPLACE FUNCTION ld_check_move_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total_debit numeric;
    total_credit numeric;
    line_count integer;
BEGIN
    IF NEW.state <> 'posted' THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0), count(*)
      INTO total_debit, total_credit, line_count
      FROM account_move_line WHERE move_id = NEW.id;
    IF line_count = 0 OR total_debit <> total_credit THEN
        RAISE EXCEPTION 'posted move % is not balanced (debit %, credit %)',
            NEW.id, total_debit, total_credit
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS account_move_balanced ON account_move;
CREATE CONSTRAINT TRIGGER account_move_balanced
    AFTER INSERT OR UPDATE ON account_move
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ld_check_move_balanced();

-- Lines of a posted entry are immutable (reset it to draft first, as in Odoo).
CREATE OR REPLACE FUNCTION ld_lines_of_posted_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    target integer;
BEGIN
    target := CASE WHEN TG_OP = 'DELETE' THEN OLD.move_id ELSE NEW.move_id END;
    IF EXISTS (SELECT 1 FROM account_move WHERE id = target AND state = 'posted') THEN
        IF TG_OP = 'UPDATE' AND NEW.debit = OLD.debit AND NEW.credit = OLD.credit
           AND NEW.account_id = OLD.account_id THEN
            RETURN NEW;  -- parent_state and similar bookkeeping may change
        END IF;
        RAISE EXCEPTION 'lines of posted move % cannot change', target
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
DROP TRIGGER IF EXISTS account_move_line_frozen ON account_move_line;
CREATE TRIGGER account_move_line_frozen
    BEFORE INSERT OR UPDATE OR DELETE ON account_move_line
    FOR EACH ROW EXECUTE FUNCTION ld_lines_of_posted_frozen();
"""

SEED = """
INSERT INTO res_company (name) VALUES ('Ledgerdrill Demo Company') ON CONFLICT DO NOTHING;
INSERT INTO account_account (code, name, account_type, reconcile) VALUES
    ('101401', 'Bank', 'asset_cash', false),
    ('121000', 'Account Receivable', 'asset_receivable', true),
    ('211000', 'Account Payable', 'liability_payable', true),
    ('400000', 'Product Sales', 'income', false),
    ('600000', 'Expenses', 'expense', false)
ON CONFLICT (code) DO NOTHING;
INSERT INTO account_journal (code, name, type, default_account_id)
SELECT j.code, j.name, j.type, a.id
  FROM (VALUES ('INV', 'Customer Invoices', 'sale', '400000'),
               ('BILL', 'Vendor Bills', 'purchase', '600000'),
               ('BNK', 'Bank', 'bank', '101401'),
               ('MISC', 'Miscellaneous Operations', 'general', NULL))
       AS j(code, name, type, account_code)
  LEFT JOIN account_account a ON a.code = j.account_code
ON CONFLICT (code) DO NOTHING;
"""


def ensure_schema(
    dsn: str, admin_login: str, admin_password: str, api_key: str | None = None
) -> None:
    """Create tables, constraints and seed data if missing, and make ``admin_login`` a user
    with ``admin_password`` (stored hashed) and, when given, ``api_key`` as one of its API
    keys (hashed too). Safe to run from several replicas at once: everything happens in
    one transaction under a transaction-scoped advisory lock."""
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        conn.execute(DDL)  # a constant, not user input
        conn.execute(SEED)
        for name in MODELS:  # the models this ERP serves, as ir.model lists them
            conn.execute(
                "INSERT INTO ir_model (model, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (name, name.replace(".", " ").title()),
            )
        user_id = _ensure_admin(conn, admin_login, admin_password)
        if api_key is not None:
            _ensure_api_key(conn, user_id, api_key)
        conn.commit()


API_KEY_INDEX_SIZE = 8  # Odoo's INDEX_SIZE: the clear prefix a key is looked up by
API_KEY_DAYS = 90  # Odoo refuses keys that last more than three months


def _ensure_api_key(conn: psycopg.Connection[tuple[object, ...]], user_id: int, key: str) -> None:
    index = key[:API_KEY_INDEX_SIZE]
    rows = conn.execute(
        "SELECT key FROM res_users_apikeys WHERE user_id = %s AND index = %s"
        " AND (expiration_date IS NULL OR expiration_date > now())",
        (user_id, index),
    ).fetchall()
    if any(verify_password(key, str(row[0])) for row in rows):
        return
    conn.execute(
        "INSERT INTO res_users_apikeys (user_id, name, scope, index, key, expiration_date)"
        " VALUES (%s, 'ledgerdrill sandbox', 'rpc', %s, %s, now() + make_interval(days => %s))",
        (user_id, index, hash_password(key), API_KEY_DAYS),
    )


def _ensure_admin(conn: psycopg.Connection[tuple[object, ...]], login: str, password: str) -> int:
    row = conn.execute(
        "SELECT id, password_hash FROM res_users WHERE login = %s", (login,)
    ).fetchone()
    if row is not None:
        user_id, stored = row
        if not verify_password(password, str(stored)):  # keep the hash when unchanged
            conn.execute(
                "UPDATE res_users SET password_hash = %s WHERE id = %s",
                (hash_password(password), user_id),
            )
        return int(str(user_id))
    partner = conn.execute(
        "INSERT INTO res_partner (name, email) VALUES (%s, %s) RETURNING id",
        ("Administrator", f"{login}@example.com" if "@" not in login else login),
    ).fetchone()
    company = conn.execute("SELECT min(id) FROM res_company").fetchone()
    assert partner is not None
    assert company is not None
    created = conn.execute(
        "INSERT INTO res_users (login, password_hash, partner_id, company_id)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (login, hash_password(password), partner[0], company[0]),
    ).fetchone()
    assert created is not None
    return int(str(created[0]))
