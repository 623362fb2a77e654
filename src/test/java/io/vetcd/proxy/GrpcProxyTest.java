package io.vetcd.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class GrpcProxyTest {

  @Test
  void aStreamsStatusMessageIsDecodedAsGrpcEncodesIt() {
    assertEquals("etcdserver: no leader", GrpcProxy.percentDecoded("etcdserver: no leader"));
    assertEquals("100% a+b é", GrpcProxy.percentDecoded("100%25 a+b %C3%A9"));
    assertEquals("50%", GrpcProxy.percentDecoded("50%"));
  }

  @Test
  void endpointsAreHostPortOrUrls() {
    assertEquals("127.0.0.1:2379", GrpcProxyCommand.address("127.0.0.1:2379").toString());
    assertEquals("10.0.0.1:22379", GrpcProxyCommand.address("http://10.0.0.1:22379").toString());
    assertThrows(IllegalArgumentException.class, () -> GrpcProxyCommand.address("127.0.0.1"));
    assertEquals("10.0.0.1:2379", GrpcProxyCommand.address("https://10.0.0.1:2379").toString());
  }
}
