package yopy;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One real OpenSearch node in this JVM, so the template's tests need no Docker.
 *
 * <p>Usage: {@code java -cp CLASSPATH yopy.EmbeddedOpenSearch HOME [HTTP_PORT]}. The node
 * keeps everything under HOME (its data in HOME/data), listens on 127.0.0.1 only, and
 * prints {@code HTTP 127.0.0.1:PORT} on stdout once its REST API is bound (port 0, the
 * default, lets the system pick). It stops cleanly when stdin closes or on SIGTERM.
 */
public final class EmbeddedOpenSearch {
    private static final long CLOSE_TIMEOUT_SECONDS = 30;

    private EmbeddedOpenSearch() {}

    /**
     * Node's constructor that takes plugins is protected. Embedding skips the
     * distribution's modules folder, so the netty4 module, which carries HTTP, comes in
     * as a plugin class from the classpath.
     */
    private static final class ClasspathNode extends Node {
        ClasspathNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
            super(
                InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "yopy-node"),
                plugins,
                true // forbidPrivateIndexSettings, as in a real node
            );
        }
    }

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: yopy.EmbeddedOpenSearch HOME [HTTP_PORT]");
            System.exit(2);
        }
        try {
            run(Path.of(args[0]).toAbsolutePath(), args.length == 2 ? args[1] : "0");
            System.exit(0);
        } catch (Exception e) {
            // The node's threads are not daemons: without exit, a failed start would hang.
            e.printStackTrace();
            System.exit(1);
        }
    }

    private static void run(Path home, String httpPort) throws Exception {
        logWarningsToStderr();
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("cluster.name", "yopy-tests")
            .put("node.name", "yopy-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // On a nearly full disk the watermarks would make every index read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Node node = new ClasspathNode(settings, List.of(Netty4Plugin.class));
        // The JVM runs this hook on SIGTERM and on System.exit once stdin closes.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(node), "yopy-stop"));
        node.start();

        TransportAddress http = node.injector()
            .getInstance(HttpServerTransport.class)
            .boundAddress()
            .publishAddress();
        System.out.println("HTTP " + http.getAddress() + ":" + http.getPort());
        System.out.flush();
        // Returns when stdin closes: the parent is done with the node, or gone.
        System.in.transferTo(OutputStream.nullOutputStream());
    }

    private static void stop(Node node) {
        try {
            node.close();
            if (!node.awaitClose(CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                System.err.println("OpenSearch did not stop within " + CLOSE_TIMEOUT_SECONDS + " s");
            }
        } catch (IOException e) {
            e.printStackTrace();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Warnings and errors only, on stderr: stdout carries the one HTTP line. Set before
     * any OpenSearch class asks for a logger, and without log4j's own shutdown hook,
     * which would stop logging while the node is still closing.
     */
    private static void logWarningsToStderr() {
        ConfigurationBuilder<BuiltConfiguration> config =
            ConfigurationBuilderFactory.newConfigurationBuilder();
        config.setStatusLevel(Level.ERROR);
        config.setShutdownHook("disable");
        config.add(
            config.newAppender("stderr", "Console")
                .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
                .add(config.newLayout("PatternLayout")
                    .addAttribute("pattern", "[%d{HH:mm:ss,SSS}][%-5level][%c{1}] %msg%n"))
        );
        config.add(config.newRootLogger(Level.WARN).add(config.newAppenderRef("stderr")));
        Configurator.initialize(config.build());
    }
}
