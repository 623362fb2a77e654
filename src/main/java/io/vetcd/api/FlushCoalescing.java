package io.vetcd.api;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * Coalesces the flushes of an HTTP/2 client connection into one per event-loop turn. Vert.x flushes
 * after every write made outside a read: each gRPC response answered from another thread, and each
 * watch response a stream sends when woken, cost a socket write of its own. With this, the writes
 * queued in one turn (many answers, a watch stream's responses to all its watchers) leave together.
 */
final class FlushCoalescing {

  private static final String NAME = "vetcd-flush-coalescing";

  private FlushCoalescing() {}

  static void install(HttpConnection connection) {
    if (!(connection instanceof ConnectionBase base)) {
      return;
    }
    ChannelHandlerContext ctx = base.channelHandlerContext();
    ChannelPipeline pipeline = ctx.pipeline();
    ChannelHandlerContext http2 = pipeline.context(Http2ConnectionHandler.class);
    if (http2 == null || pipeline.get(NAME) != null) {
      return; // HTTP/1.x, or already there
    }
    // Before the HTTP/2 handler (towards the socket): its flushes pass through here. Flushes made
    // outside a read are deferred to the end of the turn, at most 256 writes apart.
    pipeline.addBefore(http2.name(), NAME, new FlushConsolidationHandler(256, true));
  }
}
