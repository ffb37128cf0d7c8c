// Package cli implements the "tramp vm" subcommands:
//
//	tramp vm fetch [--kernel debian-7.2.13,...|all] [--arch x86_64,arm64]
//	tramp vm hello [--kernel K] [--arch x86_64,arm64] [--timeout D] ...
//	tramp vm check [--kernel K,..] [--arch x86_64,arm64] [CASE ...]
//	tramp vm record [--kernel K,..] [--arch x86_64,arm64] [CASE ...]
//	tramp vm fuzz [--kernel K] [--arch ..] [--seed N] [--ops K]
//	tramp vm shapes [--kernel K,..] [--arch ..] [--per-bucket K] [--seed N] [--record]
//
// check, record, shapes and fuzz take --shard i/n (run one part of the
// build × arch × case matrix, package report's Plan) and write their
// results for CI with --json, --junit and --markdown; "tramp report
// merge" joins the shards' --json files.
//
// The tramp command hands everything after "vm" to Main.
package cli
