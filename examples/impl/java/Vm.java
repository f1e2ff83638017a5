// A machine for lclock (SPEC section 9): Lamport, vector and hybrid logical clocks.
// Run it with (Java 11+ runs a single source file):
//   lclock sim --impl "java examples/impl/java/Vm.java" --duration 60
// lclock sends one JSON line per request on stdin; we answer each with one line on stdout.
// The requests are small and regular, so a key finder does instead of a JSON library:
// it accepts any spacing and key order.
import java.io.*;
import java.util.regex.*;

public class Vm {
    static long lclock, hl, hc;
    static long[] vclock = new long[0];
    static int me;
    static boolean hasHlc;

    /** The text after "key": (any spacing), or null. A "key" not followed by ':' is a value. */
    static String find(String s, String key) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*").matcher(s);
        return m.find() ? s.substring(m.end()) : null;
    }
    static long num(String s, String key) {
        Matcher m = Pattern.compile("^\\d+").matcher(find(s, key));
        return m.find() ? Long.parseLong(m.group()) : 0;
    }
    static long[] list(String s, String key) {  // a JSON list of integers
        String body = find(s, key);
        String[] parts = body.substring(1, body.indexOf(']')).split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = Long.parseLong(parts[i].trim());
        return out;
    }

    static void hlcUpdate(long pt, long[] m) {  // HLC (Kulkarni et al. 2014)
        long lm = m != null ? m[0] : hl, cm = m != null ? m[1] : hc;
        long l = Math.max(Math.max(hl, lm), pt);
        if (m == null) hc = l == hl ? hc + 1 : 0;
        else if (l == hl && l == lm) hc = Math.max(hc, cm) + 1;
        else if (l == hl) hc = hc + 1;
        else if (l == lm) hc = cm + 1;
        else hc = 0;
        hl = l;
    }

    static String clocks() {
        StringBuilder b = new StringBuilder("\"lclock\":" + lclock);
        if (vclock.length > 0) {
            b.append(",\"vclock\":[");
            for (int i = 0; i < vclock.length; i++) b.append(i > 0 ? "," : "").append(vclock[i]);
            b.append("]");
        }
        if (hasHlc) b.append(",\"hlc\":[").append(hl).append(",").append(hc).append("]");
        return b.toString();
    }

    static String tick(String req) {
        String msg = find(req, "msg");
        if (msg != null) {  // a receive: the message's clocks
            lclock = Math.max(lclock, num(msg, "lclock")) + 1;
            if (vclock.length > 0) {
                long[] v = list(msg, "vclock");
                for (int i = 0; i < vclock.length; i++) vclock[i] = Math.max(vclock[i], v[i]);
            }
            if (hasHlc) hlcUpdate(num(req, "pt"), list(msg, "hlc"));
        } else {  // send or internal: one event
            lclock++;
            if (hasHlc) hlcUpdate(num(req, "pt"), null);
        }
        if (vclock.length > 0) vclock[me - 1]++;
        String done = "{\"type\":\"done\",\"tick\":" + num(req, "tick") + "," + clocks();
        if (find(req, "do").startsWith("\"send\"")) done += ",\"msg\":{" + clocks() + "}";
        return done + "}";
    }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, "UTF-8");
        for (String line; (line = in.readLine()) != null; ) {
            String type = find(line, "type");
            if (type.startsWith("\"init\"")) {
                me = (int) num(line, "machine");
                String offered = find(line, "clocks");
                offered = offered.substring(0, offered.indexOf(']'));
                if (offered.contains("\"vector\"")) vclock = new long[(int) num(line, "machines")];
                hasHlc = offered.contains("\"hlc\"");
                out.println("{\"type\":\"init_ok\"}");
            } else if (type.startsWith("\"tick\"")) {
                out.println(tick(line));
            } else {
                out.println("{\"type\":\"stop_ok\"}");
                out.flush();
                return;
            }
            out.flush();
        }
    }
}
