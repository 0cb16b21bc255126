// Peer is a Curator client that a Go test drives through a line protocol:
// commands on stdin, replies and events on stdout, fields separated by tabs.
// It prints "ready" once connected; every command answers "ok" (after any
// lines it prints) or "error<TAB>message". Leadership changes are printed as
// "leader<TAB>id<TAB>true|false<TAB>wall clock in ns" when they happen.
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.*;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.details.ServiceCacheListener;

@SuppressWarnings({"rawtypes", "unchecked"})
public class Peer {
    static final ObjectMapper json = new ObjectMapper();
    static CuratorFramework client;
    static final Map<String, LeaderLatch> latches = new HashMap<>();
    static final Map<String, ServiceDiscovery<Map>> discoveries = new HashMap<>();
    static final Map<String, ServiceInstance<Map>> registered = new HashMap<>();
    static final List<ServiceCache<Map>> caches = new ArrayList<>();

    static synchronized void say(String... fields) {
        System.out.println(String.join("\t", fields));
        System.out.flush();
    }

    static String now() {
        Instant i = Instant.now();
        return Long.toString(i.getEpochSecond() * 1_000_000_000L + i.getNano());
    }

    public static void main(String[] args) throws Exception {
        client = CuratorFrameworkFactory.builder().connectString(args[0])
            .sessionTimeoutMs(Integer.parseInt(args[1])).connectionTimeoutMs(5000)
            .retryPolicy(new RetryNTimes(50, 100)).build();
        client.start();
        if (!client.blockUntilConnected(15, TimeUnit.SECONDS)) {
            say("error", "not connected");
            System.exit(1);
        }
        say("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split("\t", -1);
            try {
                if (f[0].equals("exit")) {
                    break;
                }
                run(f);
                say("ok");
            } catch (Exception e) {
                say("error", String.valueOf(e).replace('\n', ' '));
            }
        }
        for (ServiceCache<Map> c : caches) c.close();
        for (ServiceDiscovery<Map> d : discoveries.values()) d.close();
        for (LeaderLatch l : latches.values()) l.close();
        client.close();
        System.exit(0);
    }

    static ServiceDiscovery<Map> discovery(String base) throws Exception {
        ServiceDiscovery<Map> d = discoveries.get(base);
        if (d == null) {
            d = ServiceDiscoveryBuilder.builder(Map.class).client(client).basePath(base)
                .serializer(new JsonInstanceSerializer<>(Map.class)).build();
            d.start();
            discoveries.put(base, d);
        }
        return d;
    }

    static String ids(Collection<ServiceInstance<Map>> instances) {
        List<String> ids = new ArrayList<>();
        for (ServiceInstance<Map> i : instances) ids.add(i.getId());
        Collections.sort(ids);
        return String.join(",", ids);
    }

    static void run(String[] f) throws Exception {
        switch (f[0]) {
        case "latch": { // latch path id
            String id = f[2];
            LeaderLatch l = new LeaderLatch(client, f[1], id);
            l.addListener(new LeaderLatchListener() {
                public void isLeader() { say("leader", id, "true", now()); }
                public void notLeader() { say("leader", id, "false", now()); }
            });
            latches.put(id, l);
            l.start();
            // Answer once our node exists, so the test knows our place.
            for (int i = 0; l.getOurPath() == null && i < 1000; i++) Thread.sleep(10);
            if (l.getOurPath() == null) throw new IllegalStateException("latch node not created");
            return;
        }
        case "participants": { // participants id
            List<String> out = new ArrayList<>();
            for (Participant p : latches.get(f[1]).getParticipants()) {
                out.add(p.getId() + (p.isLeader() ? "*" : ""));
            }
            say("participants", String.join(",", out));
            return;
        }
        case "unlatch": { // unlatch id: stop leading, then leave
            LeaderLatch l = latches.remove(f[1]);
            if (l.hasLeadership()) say("leader", f[1], "false", now());
            l.close();
            return;
        }
        case "register": { // register base name id address port payload-json
            Map payload = f[6].equals("null") ? null : json.readValue(f[6], Map.class);
            ServiceInstance<Map> i = ServiceInstance.<Map>builder().name(f[2]).id(f[3])
                .address(f[4]).port(Integer.parseInt(f[5])).payload(payload)
                .uriSpec(new UriSpec("{scheme}://{address}:{port}")).build();
            discovery(f[1]).registerService(i);
            registered.put(f[1] + "/" + f[2] + "/" + f[3], i);
            return;
        }
        case "update": { // update base name id address port payload-json: updateService
            Map payload = f[6].equals("null") ? null : json.readValue(f[6], Map.class);
            ServiceInstance<Map> old = registered.get(f[1] + "/" + f[2] + "/" + f[3]);
            ServiceInstance<Map> i = ServiceInstance.<Map>builder().name(f[2]).id(f[3])
                .address(f[4]).port(Integer.parseInt(f[5])).payload(payload)
                .registrationTimeUTC(old.getRegistrationTimeUTC())
                .uriSpec(new UriSpec("{scheme}://{address}:{port}")).build();
            discovery(f[1]).updateService(i);
            registered.put(f[1] + "/" + f[2] + "/" + f[3], i);
            return;
        }
        case "unregister": { // unregister base name id
            discovery(f[1]).unregisterService(registered.remove(f[1] + "/" + f[2] + "/" + f[3]));
            return;
        }
        case "query": { // query base name: one line per instance, as Java sees it
            for (ServiceInstance<Map> i : discovery(f[1]).queryForInstances(f[2])) {
                Object p = i.getPayload();
                say("instance", i.getName(), i.getId(), String.valueOf(i.getAddress()),
                    String.valueOf(i.getPort()), String.valueOf(i.getSslPort()),
                    p == null ? "null" : p.getClass().getName() + " " + json.writeValueAsString(p),
                    Long.toString(i.getRegistrationTimeUTC()), String.valueOf(i.getServiceType()),
                    i.buildUriSpec(), String.valueOf(i.isEnabled()));
            }
            return;
        }
        case "cache": { // cache base name: "cache name ids" now and on every change
            String name = f[2];
            ServiceCache<Map> c = discovery(f[1]).serviceCacheBuilder().name(name).build();
            c.addListener(new ServiceCacheListener() {
                public void cacheChanged() { say("cache", name, ids(c.getInstances())); }
                public void stateChanged(CuratorFramework cf, ConnectionState s) {}
            });
            c.start();
            caches.add(c);
            say("cache", name, ids(c.getInstances()));
            return;
        }
        default:
            throw new IllegalArgumentException("unknown command " + f[0]);
        }
    }
}
