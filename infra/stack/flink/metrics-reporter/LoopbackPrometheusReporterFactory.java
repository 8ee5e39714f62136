// Flink's Prometheus reporter, bound to one address. flink-metrics-prometheus 2.2 serves its
// metrics on every interface (new InetSocketAddress(port)); the local stack binds loopback only.
// Same package as the reporter: it reuses AbstractPrometheusReporter's package-private registry,
// so the metrics and their names are exactly the reporter's. Built by adagg.stack (javac, jar) and
// loaded from the same plugin folder as flink-metrics-prometheus.
package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

public class LoopbackPrometheusReporterFactory implements MetricReporterFactory {
    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        // Values from config.yaml arrive typed (an Integer port), from -D as strings.
        String host = String.valueOf(properties.getOrDefault("host", "127.0.0.1"));
        int port = Integer.parseInt(String.valueOf(properties.getOrDefault("port", "9249")));
        return new Reporter(new InetSocketAddress(host, port));
    }

    static final class Reporter extends AbstractPrometheusReporter {
        private final HTTPServer server;

        Reporter(InetSocketAddress address) {
            try {
                server = new HTTPServer(address, registry);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot serve Prometheus metrics on " + address, e);
            }
            log.info("Started PrometheusReporter HTTP server on {}.", address);
        }

        @Override
        public void close() {
            server.stop();
            super.close();
        }
    }
}
