package io.vetcd.mvcc;

import io.vetcd.proto.mvccpb.KeyValue;
import java.util.List;

/**
 * What a range read found: the key-values (at most the limit asked for), how many keys the range held
 * in all, and the store's current revision when it was read (etcd puts that, not the revision read at,
 * in the response header).
 */
public record RangeResult(List<KeyValue> kvs, long count, long revision) {}
