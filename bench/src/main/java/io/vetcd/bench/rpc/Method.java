package io.vetcd.bench.rpc;

import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;

/**
 * A method of etcd's gRPC API as this tool calls it: its HTTP/2 path and how to read its answers.
 *
 * @param <Req> the request message
 * @param <Resp> the response message
 */
public record Method<Req extends MessageLite, Resp extends MessageLite>(String path, Parser<Resp> responses) {}
