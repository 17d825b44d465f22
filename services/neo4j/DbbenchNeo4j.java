// Runs Neo4j Community in this JVM, serving Bolt, for dbbench's local services.
//
// Started by services/engines/neo4j.sh as
//   java <heap flags> -cp <classes>:<jars> DbbenchNeo4j <home dir> <neo4j.conf>
// The conf file (written by the launcher on every start) holds every setting: Bolt on
// loopback, no HTTP, no auth, page cache size. This program only applies it, waits, and
// shuts the database down cleanly (a checkpoint) on SIGTERM; it must never add settings
// of its own, so that the conf file is the whole story.
//
// Why DatabaseManagementServiceBuilder and not the harness's Neo4jBuilders: the harness
// runs each start in a new random folder and deletes it on close (it is made for tests);
// a benchmark server keeps its data across restarts like the other engines.

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

public final class DbbenchNeo4j {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2) {
            System.err.println("usage: DbbenchNeo4j <home dir> <neo4j.conf>");
            System.exit(2);
        }
        Path home = Path.of(args[0]);
        Path conf = Path.of(args[1]);
        DatabaseManagementService dbms =
                new DatabaseManagementServiceBuilder(home).loadPropertiesFromFile(conf).build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("dbbench-neo4j: shutting down");
            dbms.shutdown();
            System.out.println("dbbench-neo4j: stopped");
            stopped.countDown();
        }, "dbbench-neo4j-shutdown"));
        System.out.println("dbbench-neo4j: started, home " + home + ", config " + conf);
        stopped.await();
    }
}
