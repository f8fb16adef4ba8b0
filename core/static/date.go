package static

import "time"

// imfFixdate is the layout of the preferred HTTP-date format, IMF-fixdate
// (RFC 9110 section 5.6.7), which is the only one a sender may generate.
const imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"

// formatHTTPDate returns t, to the second, as an IMF-fixdate.
func formatHTTPDate(t time.Time) string {
	var b [len(imfFixdate)]byte
	return string(t.UTC().AppendFormat(b[:0], imfFixdate))
}

var (
	shortDayNames = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDayNames  = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	monthNames    = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// parseHTTPDate parses an HTTP-date in any of the three formats a
// recipient must accept (RFC 9110 section 5.6.7): IMF-fixdate, the
// obsolete RFC 850 format and asctime. The grammar is case-sensitive and
// allows no extra whitespace. It returns the date in Unix seconds. now
// resolves the two-digit year of the RFC 850 format: a year more than 50
// years in the future is taken as the most recent past year with the same
// last two digits.
func parseHTTPDate(s string, now time.Time) (int64, bool) {
	switch {
	case len(s) == len("Sun, 06 Nov 1994 08:49:37 GMT") && s[3] == ',':
		return parseIMFFixdate(s)
	case len(s) == len("Sun Nov  6 08:49:37 1994") && s[3] == ' ':
		return parseASCTime(s)
	}
	return parseRFC850(s, now)
}

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (int64, bool) {
	if !isDayName(s[:3], shortDayNames[:]) || s[3:5] != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
		return 0, false
	}
	day, ok1 := digits(s[5:7])
	month, ok2 := monthNumber(s[8:11])
	year, ok3 := digits(s[12:16])
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	return dateSeconds(year, month, day, s[17:25])
}

// parseASCTime parses "Sun Nov  6 08:49:37 1994".
func parseASCTime(s string) (int64, bool) {
	if !isDayName(s[:3], shortDayNames[:]) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
		return 0, false
	}
	month, ok1 := monthNumber(s[4:7])
	dayText := s[8:10]
	if dayText[0] == ' ' {
		dayText = dayText[1:]
	}
	day, ok2 := digits(dayText)
	year, ok3 := digits(s[20:24])
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	return dateSeconds(year, month, day, s[11:19])
}

// parseRFC850 parses "Sunday, 06-Nov-94 08:49:37 GMT".
func parseRFC850(s string, now time.Time) (int64, bool) {
	comma := -1
	for i := 0; i < len(s) && i < len("Wednesday,"); i++ {
		if s[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isDayName(s[:comma], longDayNames[:]) {
		return 0, false
	}
	rest := s[comma:]
	if len(rest) != len(", 06-Nov-94 08:49:37 GMT") || rest[:2] != ", " || rest[4] != '-' || rest[8] != '-' || rest[11] != ' ' || rest[20:] != " GMT" {
		return 0, false
	}
	day, ok1 := digits(rest[2:4])
	month, ok2 := monthNumber(rest[5:8])
	yy, ok3 := digits(rest[9:11])
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	return dateSeconds(fullYear(yy, now.UTC().Year()), month, day, rest[12:20])
}

// fullYear expands a two-digit year as RFC 9110 section 5.6.7 requires.
func fullYear(yy, thisYear int) int {
	year := thisYear - thisYear%100 + yy
	if year > thisYear+50 {
		year -= 100
	}
	return year
}

// dateSeconds validates the fields of a date and its "hh:mm:ss" time of
// day and returns the instant in Unix seconds. A second of 60 (a leap
// second) is allowed, as the grammar does.
func dateSeconds(year, month, day int, clock string) (int64, bool) {
	if clock[2] != ':' || clock[5] != ':' {
		return 0, false
	}
	hour, ok1 := digits(clock[0:2])
	minute, ok2 := digits(clock[3:5])
	second, ok3 := digits(clock[6:8])
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || second > 60 || day < 1 {
		return 0, false
	}
	midnight := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if midnight.Day() != day {
		return 0, false // 31 Apr and the like
	}
	return midnight.Unix() + int64(hour*3600+minute*60+second), true
}

func isDayName(s string, names []string) bool {
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}

func monthNumber(s string) (int, bool) {
	for i, n := range monthNames {
		if s == n {
			return i + 1, true
		}
	}
	return 0, false
}

// digits parses a short run of ASCII digits.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
