// Package report is what tramp's VM runs (tramp vm check, record, shapes
// and fuzz) give to machines and people: the results JSON (a versioned
// schema, Results), the split of a run into CI shards (Shard, Plan), the
// JUnit XML and Markdown renderings of a result, the merge of shard
// results into one (Merge), and the text table every run prints.
//
// It knows nothing of QEMU or the model: vm/cli fills a Results from its
// boots, and "tramp report merge" reads the files back.
package report
