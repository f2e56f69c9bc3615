// Package feed turns outside market data into [Record] values that the rest of
// crunch-node can store, score against and hand to models.
//
// The package is deliberately pure: it speaks HTTP to data providers and
// returns values, but it never touches the database. Jobs glue it to sqlc
// queries (feed poll, feed backfill), which keeps every parser table- and
// fuzz-testable without Postgres.
//
// # Providers
//
// A [Provider] fetches one page of history at a time ([Provider.Fetch]) and the
// most recent closed value ([Provider.Latest]). [FetchAll] walks a whole range
// page by page with no row cap, so a backfill can persist its cursor after each
// page and resume after a crash; the Python engine capped catch-up at 500 rows
// per restart, which silently left gaps.
//
// Built-in providers, chosen by name with [New]:
//
//   - binance: public spot REST klines (1s, 1m, 5m, 15m, 1h, 1d — a real 1s
//     interval, not relabelled 1m data) and ticker prices. Only closed candles
//     are returned, because the candle still forming changes until it closes and
//     the Python engine stored its first seconds as if final.
//   - pyth: Hermes latest prices (ticks, or single-price candles floored to the
//     bucket) and TradingView UDF history for backfill. Feed ids are matched
//     with or without 0x and in any case; the canonical BTC/USD id is built in.
//   - synthetic: a seeded geometric Brownian motion that needs no network. Every
//     value is a pure function of (seed, subject, time), so overlapping fetches,
//     restarts and different granularities agree with each other.
//
// Provider options come from FEED_OPT_<NAME> environment variables, read
// through [OptionsFromEnviron] from an injected environment list so tests never
// touch the process environment.
//
// # Bad input
//
// Feeds return garbage as a matter of course. Parsers never panic: rows that are
// malformed, non-finite, non-positive, duplicated, out of order, in the future
// or not yet closed are dropped and reported in [Page.Skipped] with a reason, so
// the job layer can count and log them. Whole-response failures are returned as
// errors that match the sentinels [ErrBadResponse], [ErrRateLimited],
// [ErrUnavailable], [ErrUnknownSubject] and [ErrUnsupported]; rate limits and
// outages carry the server's Retry-After (see [RetryAfter]) so callers can back
// off instead of hammering a provider into an IP ban.
//
// # Model inputs and exports
//
// Normalizers ([NormalizerByName]) build the model input shapes of the Python
// engine (candle and tick). [WriteParquet] and [ReadParquet] implement the
// backfill data plane's Parquet schema, and [SafeExportPath] builds export paths
// that cannot escape their root.
package feed
