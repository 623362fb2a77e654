package io.vetcd.api;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcdctl 3.4 dials some endpoints (those of {@code endpoint status}, {@code endpoint hashkv},
 * {@code defrag}) so that grpc-go sends the whole URL, {@code http://127.0.0.1:2379}, as the HTTP/2
 * {@code :authority}. etcd's Go server accepts it; Vert.x treats it as a malformed request and resets
 * the stream. This strips the scheme from such an authority before Vert.x reads the headers, on each
 * new HTTP/2 connection, by decorating Netty's frame listener (Vert.x has no public hook for it).
 */
final class AuthorityFix {

  private static final Logger LOG = LoggerFactory.getLogger(AuthorityFix.class);

  private AuthorityFix() {}

  static void install(HttpConnection connection) {
    if (!(connection instanceof ConnectionBase base)) {
      return;
    }
    ChannelHandlerContext ctx = base.channelHandlerContext();
    Http2ConnectionHandler handler = ctx.pipeline().get(Http2ConnectionHandler.class);
    if (handler == null) {
      return; // HTTP/1.x
    }
    Http2FrameListener listener = handler.decoder().frameListener();
    if (listener instanceof Decorator) {
      return;
    }
    handler.decoder().frameListener(new Decorator(listener));
    LOG.trace("authority fix installed on {}", ctx.channel());
  }

  private static final class Decorator extends Http2FrameListenerDecorator {
    Decorator(Http2FrameListener listener) {
      super(listener);
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
        boolean endOfStream) throws Http2Exception {
      strip(headers);
      super.onHeadersRead(ctx, streamId, headers, padding, endOfStream);
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int streamDependency,
        short weight, boolean exclusive, int padding, boolean endOfStream) throws Http2Exception {
      strip(headers);
      super.onHeadersRead(ctx, streamId, headers, streamDependency, weight, exclusive, padding, endOfStream);
    }

    private static void strip(Http2Headers headers) {
      CharSequence authority = headers.authority();
      if (authority == null) {
        return;
      }
      String a = authority.toString();
      int scheme = a.indexOf("://");
      if (scheme > 0) {
        headers.authority(a.substring(scheme + 3));
      }
    }
  }
}
