package io.vetcd.compat.kubernetes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * k8s/'s manifests are what the API server would take (issue 19; no Kubernetes is reachable here):
 * every object reads into Kubernetes' own types (fabric8's model classes, generated from Kubernetes'
 * OpenAPI schema) with no field those types do not have and no value of the wrong type, and the
 * objects fit together as the StatefulSet needs (selectors, Service names, named ports, the service
 * account's rights, the volume, the variables the args use).
 */
class ManifestsTest {

  private static final Path K8S = Path.of(System.getProperty("vetcd.home", "../..")).resolve("k8s");
  private static final Map<String, Class<? extends HasMetadata>> KINDS = Map.of(
      "apps/v1/StatefulSet", StatefulSet.class,
      "v1/Service", Service.class,
      "v1/ServiceAccount", ServiceAccount.class,
      "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
      "rbac.authorization.k8s.io/v1/Role", Role.class,
      "rbac.authorization.k8s.io/v1/RoleBinding", RoleBinding.class);

  private final YAMLMapper yaml = YAMLMapper.builder().build();

  /** Every object of the files kustomization.yaml lists, read into its Kubernetes type. */
  private List<HasMetadata> objects() throws IOException {
    List<HasMetadata> objects = new ArrayList<>();
    for (String file : resources()) {
      for (String document : Files.readString(K8S.resolve(file)).split("(?m)^---\\s*$")) {
        Map<?, ?> raw = yaml.readValue(document, Map.class);
        if (raw == null) {
          continue;
        }
        String kind = raw.get("apiVersion") + "/" + raw.get("kind");
        Class<? extends HasMetadata> type = KINDS.get(kind);
        assertNotNull(type, file + ": an object of a kind this test does not know: " + kind);
        HasMetadata object = yaml.readValue(document, type);
        List<String> unknown = new ArrayList<>();
        unknownFields(object, file + ": " + raw.get("kind") + " " + object.getMetadata().getName(), unknown);
        assertEquals(List.of(), unknown, "fields Kubernetes' types do not have");
        objects.add(object);
      }
    }
    return objects;
  }

  @SuppressWarnings("unchecked")
  private List<String> resources() throws IOException {
    Map<String, Object> kustomization = yaml.readValue(Files.readString(K8S.resolve("kustomization.yaml")), Map.class);
    assertEquals("Kustomization", kustomization.get("kind"));
    return (List<String>) kustomization.get("resources");
  }

  /**
   * Fields the model types did not recognise land in their additionalProperties: a misspelt or
   * misplaced field. Walks every model object reachable through getters.
   */
  private static void unknownFields(Object value, String path, List<String> unknown) {
    if (value == null) {
      return;
    }
    if (value instanceof List<?> list) {
      for (int i = 0; i < list.size(); i++) {
        unknownFields(list.get(i), path + "[" + i + "]", unknown);
      }
      return;
    }
    if (value instanceof Map<?, ?> map) {
      map.forEach((k, v) -> unknownFields(v, path + "." + k, unknown));
      return;
    }
    if (!value.getClass().getName().startsWith("io.fabric8.")) {
      return;
    }
    for (Method getter : value.getClass().getMethods()) {
      if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers())
          || !getter.getName().startsWith("get") || getter.getDeclaringClass() == Object.class) {
        continue;
      }
      Object field;
      try {
        field = getter.invoke(value);
      } catch (ReflectiveOperationException e) {
        throw new AssertionError(path + "." + getter.getName(), e);
      }
      if (getter.getName().equals("getAdditionalProperties")) {
        if (field instanceof Map<?, ?> extra && !extra.isEmpty()) {
          unknown.add(path + ": " + extra.keySet());
        }
      } else {
        unknownFields(field, path + "." + getter.getName().substring(3), unknown);
      }
    }
  }

  private static <T extends HasMetadata> T one(List<HasMetadata> objects, Class<T> type, String name) {
    List<T> found = objects.stream().filter(type::isInstance).map(type::cast)
        .filter(o -> name == null || o.getMetadata().getName().equals(name)).toList();
    assertEquals(1, found.size(), "one " + type.getSimpleName() + " " + (name == null ? "" : name));
    return found.get(0);
  }

  @Test
  void everyFileIsListedAndEveryObjectIsAKubernetesObject() throws IOException {
    Set<String> yamlFiles;
    try (Stream<Path> files = Files.list(K8S)) {
      yamlFiles = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".yaml"))
          .filter(n -> !n.equals("kustomization.yaml")).collect(Collectors.toCollection(TreeSet::new));
    }
    assertEquals(yamlFiles, new TreeSet<>(resources()), "kustomization.yaml's resources are k8s/'s manifests");
    assertEquals(Set.of("StatefulSet", "Service", "ServiceAccount", "PodDisruptionBudget", "Role", "RoleBinding"),
        objects().stream().map(HasMetadata::getKind).collect(Collectors.toSet()));
  }

  @Test
  void anUnknownFieldIsCaught() throws IOException {
    // The check itself: a field misplaced by one level of indentation is an unknown field of its parent.
    String misplaced = Files.readString(K8S.resolve("statefulset.yaml"))
        .replace("  podManagementPolicy: Parallel", "  template:\n    podManagementPolicy: Parallel\n  x: 1");
    List<String> unknown = new ArrayList<>();
    unknownFields(yaml.readValue(misplaced, StatefulSet.class), "statefulset", unknown);
    assertFalse(unknown.isEmpty(), "the misplaced field went unnoticed");
  }

  @Test
  void theObjectsFitTogether() throws IOException {
    List<HasMetadata> objects = objects();
    StatefulSet set = one(objects, StatefulSet.class, null);
    var spec = set.getSpec();
    Map<String, String> podLabels = spec.getTemplate().getMetadata().getLabels();
    assertTrue(podLabels.entrySet().containsAll(spec.getSelector().getMatchLabels().entrySet()),
        "the selector selects the template's pods");
    assertEquals("Parallel", spec.getPodManagementPolicy());
    assertEquals(3, spec.getReplicas());

    Service peers = one(objects, Service.class, spec.getServiceName());
    assertEquals("None", peers.getSpec().getClusterIP(), "serviceName is a headless Service");
    assertTrue(peers.getSpec().getPublishNotReadyAddresses(), "peers find each other before they are ready");
    Container container = spec.getTemplate().getSpec().getContainers().get(0);
    Set<String> portNames = container.getPorts().stream().map(ContainerPort::getName).collect(Collectors.toSet());
    assertEquals(Set.of("client", "peer", "metrics"), portNames);
    for (Service service : objects.stream().filter(Service.class::isInstance).map(Service.class::cast).toList()) {
      assertTrue(podLabels.entrySet().containsAll(service.getSpec().getSelector().entrySet()),
          service.getMetadata().getName() + " selects the pods");
      for (ServicePort port : service.getSpec().getPorts()) {
        assertTrue(portNames.contains(port.getTargetPort().getStrVal()), port.getTargetPort() + " is a container port");
      }
    }
    Service clients = one(objects, Service.class, "vetcd-client");
    assertTrue(clients.getSpec().getPorts().stream().anyMatch(p -> p.getName().equals("metrics")),
        "a ServiceMonitor can select the metrics port");

    for (Probe probe : List.of(container.getStartupProbe(), container.getLivenessProbe(), container.getReadinessProbe())) {
      assertTrue(portNames.contains(probe.getHttpGet().getPort().getStrVal()), "a probe's port is a container port");
    }
    assertEquals("/livez", container.getLivenessProbe().getHttpGet().getPath());
    assertEquals("/readyz", container.getReadinessProbe().getHttpGet().getPath());
    assertNotNull(container.getResources().getRequests().get("cpu"));
    assertNotNull(container.getResources().getRequests().get("memory"));
    assertNotNull(spec.getTemplate().getSpec().getAffinity().getPodAntiAffinity());
    assertTrue(spec.getTemplate().getSpec().getSecurityContext().getRunAsNonRoot());

    assertEquals(spec.getVolumeClaimTemplates().get(0).getMetadata().getName(),
        container.getVolumeMounts().get(0).getName(), "the data volume comes from the claim template");

    // Every $(VAR) in the args is a variable of the container (else Kubernetes leaves it as written).
    Set<String> vars = container.getEnv().stream().map(e -> e.getName()).collect(Collectors.toSet());
    Matcher ref = Pattern.compile("\\$\\(([A-Za-z_][A-Za-z0-9_]*)\\)").matcher(String.join(" ", container.getArgs()));
    while (ref.find()) {
      assertTrue(vars.contains(ref.group(1)), "$(" + ref.group(1) + ") is not defined in env");
    }
    assertEquals("statefulset", container.getArgs().get(0));

    PodDisruptionBudget pdb = one(objects, PodDisruptionBudget.class, null);
    assertEquals(1, pdb.getSpec().getMaxUnavailable().getIntVal());
    assertTrue(podLabels.entrySet().containsAll(pdb.getSpec().getSelector().getMatchLabels().entrySet()));

    String account = spec.getTemplate().getSpec().getServiceAccountName();
    one(objects, ServiceAccount.class, account);
    RoleBinding binding = one(objects, RoleBinding.class, null);
    Role role = one(objects, Role.class, binding.getRoleRef().getName());
    assertEquals("Role", binding.getRoleRef().getKind());
    assertTrue(binding.getSubjects().stream().anyMatch(s -> s.getKind().equals("ServiceAccount")
        && s.getName().equals(account)));
    PolicyRule rule = role.getRules().get(0);
    assertEquals(List.of("apps"), rule.getApiGroups());
    assertEquals(List.of("statefulsets"), rule.getResources());
    assertEquals(List.of(set.getMetadata().getName()), rule.getResourceNames());
    assertEquals(List.of("get"), rule.getVerbs(), "the pods read their StatefulSet and nothing else");
  }

  @Test
  void theObjectsReadBackAsWritten() throws IOException {
    // A value of the wrong type (a string where Kubernetes has a number) would not survive the trip.
    JsonMapper json = JsonMapper.builder().build();
    for (HasMetadata object : objects()) {
      HasMetadata again = json.readValue(json.writeValueAsString(object), object.getClass());
      assertEquals(object, again, object.getKind() + " " + object.getMetadata().getName());
    }
  }
}
