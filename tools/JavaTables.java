// Dumps the JDK's Unicode data that java.util.regex and java.lang.String use,
// for tools/gen_java_tables.py (which writes src/selectors_lib/_javaregex/_tables.py).
// Run: java --add-opens java.base/java.util.regex=ALL-UNNAMED \
//           --add-opens java.base/java.lang=ALL-UNNAMED JavaTables.java
// Output lines: "<kind> <name> <ranges>" where ranges are "start-end" hex pairs
// joined by commas (empty: the empty set).
import java.lang.reflect.Method;
import java.util.*;
import java.util.function.IntPredicate;

public class JavaTables {
    static final int MAX = 0x10FFFF;

    static String ranges(IntPredicate p) {
        StringBuilder sb = new StringBuilder();
        int start = -1;
        for (int c = 0; c <= MAX + 1; c++) {
            boolean in = c <= MAX && p.test(c);
            if (in && start < 0) start = c;
            if (!in && start >= 0) {
                if (sb.length() > 0) sb.append(',');
                sb.append(Integer.toHexString(start)).append('-').append(Integer.toHexString(c - 1));
                start = -1;
            }
        }
        return sb.toString();
    }

    static IntPredicate wrap(Object predicate) throws Exception {
        if (predicate == null) return null;
        Method is = predicate.getClass().getInterfaces()[0].getMethod("is", int.class);
        is.setAccessible(true);
        return c -> {
            try { return (Boolean) is.invoke(predicate, c); } catch (Exception e) { throw new RuntimeException(e); }
        };
    }

    public static void main(String[] args) throws Exception {
        Class<?> cp = Class.forName("java.util.regex.CharPredicates");
        Method forProperty = cp.getDeclaredMethod("forProperty", String.class, boolean.class);
        Method forUnicodeProperty = cp.getDeclaredMethod("forUnicodeProperty", String.class, boolean.class);
        Method forPosix = cp.getDeclaredMethod("forPOSIXName", String.class, boolean.class);
        for (Method m : new Method[] {forProperty, forUnicodeProperty, forPosix}) m.setAccessible(true);
        String[] props = {"Cn","Lu","Ll","Lt","Lm","Lo","Mn","Me","Mc","Nd","Nl","No","Zs","Zl","Zp",
            "Cc","Cf","Co","Cs","Pd","Ps","Pe","Pc","Po","Sm","Sc","Sk","So","Pi","Pf","L","M","N","Z",
            "C","P","S","LC","LD","L1","all","ASCII","Alnum","Alpha","Blank","Cntrl","Digit","Graph",
            "Lower","Print","Punct","Space","Upper","XDigit","javaLowerCase","javaUpperCase",
            "javaAlphabetic","javaIdeographic","javaTitleCase","javaDigit","javaDefined","javaLetter",
            "javaLetterOrDigit","javaJavaIdentifierStart","javaJavaIdentifierPart",
            "javaUnicodeIdentifierStart","javaUnicodeIdentifierPart","javaIdentifierIgnorable",
            "javaSpaceChar","javaWhitespace","javaISOControl","javaMirrored","Cased","Lowercase"};
        String[] uprops = {"ALPHABETIC","ASSIGNED","CONTROL","EMOJI","EMOJI_PRESENTATION","EMOJI_MODIFIER",
            "EMOJI_MODIFIER_BASE","EMOJI_COMPONENT","EXTENDED_PICTOGRAPHIC","HEXDIGIT","HEX_DIGIT",
            "IDEOGRAPHIC","JOINCONTROL","JOIN_CONTROL","LETTER","LOWERCASE","NONCHARACTERCODEPOINT",
            "NONCHARACTER_CODE_POINT","TITLECASE","PUNCTUATION","UPPERCASE","WHITESPACE","WHITE_SPACE",
            "WORD","DIGIT","ALNUM","BLANK","GRAPH","PRINT","ALPHA","LOWER","UPPER","SPACE"};
        String[] posix = {"ALPHA","LOWER","UPPER","SPACE","PUNCT","XDIGIT","ALNUM","CNTRL","DIGIT",
            "BLANK","GRAPH","PRINT","ASCII","WORD"};
        Object[][] kinds = {{"prop", forProperty, props}, {"uprop", forUnicodeProperty, uprops},
                            {"posix", forPosix, posix}};
        for (Object[] kind : kinds) {
            for (String name : (String[]) kind[2]) {
                for (boolean ci : new boolean[] {false, true}) {
                    IntPredicate p = wrap(((Method) kind[1]).invoke(null, name, ci));
                    if (p != null) System.out.println(kind[0] + (ci ? "_i " : " ") + name + " " + ranges(p));
                }
            }
        }
        for (int t = 0; t < 31; t++) {
            final int type = t;
            String r = ranges(c -> Character.getType(c) == type);
            if (!r.isEmpty()) System.out.println("gc " + t + " " + r);
        }
        for (Character.UnicodeScript s : Character.UnicodeScript.values()) {
            System.out.println("script " + s.name() + " " + ranges(c -> Character.UnicodeScript.of(c) == s));
        }
        char[] letters = new char[4];
        for (int a = 0; a < 26 * 26 * 26 * 26; a++) {
            int x = a;
            for (int i = 3; i >= 0; i--) { letters[i] = (char) ('A' + x % 26); x /= 26; }
            String code = new String(letters);
            try {
                System.out.println("scriptalias " + code + " " + Character.UnicodeScript.forName(code).name());
            } catch (IllegalArgumentException e) { }
        }
        Map<Character.UnicodeBlock, Boolean> seen = new LinkedHashMap<>();
        for (int c = 0; c <= MAX; c++) {
            Character.UnicodeBlock b = Character.UnicodeBlock.of(c);
            if (b != null) seen.put(b, true);
        }
        String[] extra = {"Greek", "Cyrillic Supplementary", "CyrillicSupplementary",
            "Combining Marks For Symbols", "CombiningMarksForSymbols", "Latin-1 Supplement",
            "Latin-1Supplement", "Surrogates_Area"};
        for (Character.UnicodeBlock b : seen.keySet()) {
            String constant = b.toString();
            System.out.println("block " + constant + " " + ranges(c -> Character.UnicodeBlock.of(c) == b));
            Set<String> names = new LinkedHashSet<>();
            String[] parts = constant.split("_");
            names.add(constant);
            names.add(String.join(" ", parts));
            names.add(String.join("", parts));
            for (int i = 0; i + 1 < parts.length; i++) {
                for (String sep : new String[] {" ", ""}) {
                    StringBuilder sb = new StringBuilder();
                    for (int j = 0; j < parts.length; j++) {
                        if (j > 0) sb.append(j - 1 == i ? "-" : sep);
                        sb.append(parts[j]);
                    }
                    names.add(sb.toString());
                }
            }
            for (String e : extra) names.add(e.toUpperCase(Locale.US));
            for (String n : names) {
                try {
                    if (Character.UnicodeBlock.forName(n) == b)
                        System.out.println("blockalias " + n.replace(' ', '~') + " " + constant);
                } catch (IllegalArgumentException e) { }
            }
        }
        // Case data: Character's simple mappings and String.toLowerCase(Locale.ROOT)
        // for one code point where it differs from the simple mapping.
        StringBuilder up = new StringBuilder(), low = new StringBuilder(), full = new StringBuilder();
        for (int c = 0; c <= MAX; c++) {
            int u = Character.toUpperCase(c), l = Character.toLowerCase(c);
            if (u != c) up.append(up.length() > 0 ? "," : "").append(Integer.toHexString(c)).append(':').append(Integer.toHexString(u));
            if (l != c) low.append(low.length() > 0 ? "," : "").append(Integer.toHexString(c)).append(':').append(Integer.toHexString(l));
            String s = new String(Character.toChars(c));
            String f = s.toLowerCase(Locale.ROOT);
            if (!f.equals(new String(Character.toChars(l)))) {
                StringBuilder hex = new StringBuilder();
                f.codePoints().forEach(x -> hex.append(hex.length() > 0 ? "." : "").append(Integer.toHexString(x)));
                full.append(full.length() > 0 ? "," : "").append(Integer.toHexString(c)).append(':').append(hex);
            }
        }
        System.out.println("upper - " + up);
        System.out.println("lower - " + low);
        System.out.println("fulllower - " + full);
        Method isCased = Class.forName("java.lang.ConditionalSpecialCasing").getDeclaredMethod("isCased", int.class);
        isCased.setAccessible(true);
        System.out.println("cased - " + ranges(c -> {
            try { return (Boolean) isCased.invoke(null, c); } catch (Exception e) { throw new RuntimeException(e); }
        }));
    }
}
