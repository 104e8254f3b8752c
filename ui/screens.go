package ui

import "fyne.io/fyne/v2"

// Screen is one entry of the terminal's screen table: screens are data, each defined in its own
// file, and the shell offers a screen only to an operator holding its Permission (TS Art. 3(4):
// CS and reception duties are separate).
type Screen struct {
	ID         string     // stable identifier, used by Shell.Show
	Title      string     // translation key of the title shown in the menu and the header
	Permission Permission // needed to see and open the screen; PermissionNone for everyone
	// View builds the screen's content for the shell's current session. It runs on the UI
	// goroutine each time the screen is opened.
	View func(s *Shell) fyne.CanvasObject
}

// HomeID is the screen the shell opens after log-in.
const HomeID = "home"

// Screens returns the terminal's screen table. A screen is registered only once the domain
// behind it exists: the table never offers a placeholder.
func Screens() []Screen {
	return []Screen{
		homeScreen(),
		residentsScreen(),
		changesScreen(),
		receptionIssueScreen(),
		revokeScreen(),
		lossReportScreen(),
		holdScreen(),
		copyScreen(),
		pinResetScreen(),
		keyDestructionScreen(),
		operatorsScreen(),
		settingsScreen(),
		historyScreen(),
	}
}
